"""The Python API: a loaded SEEM model that tracks objects through videos.

    import vos
    tracker = vos.load("seem_focalt")                              # or an official SEEM yaml + checkpoint
    for index, labels in tracker.track("clip.mp4", "first.png"):   # streamed, one frame at a time
        ...
    tracker.track("clip.mp4", "first.png").save("out/clip")        # DAVIS layout, atomic, resumable

A video is a file, a folder of frames, a (T, H, W, 3) uint8 array, a list of frames or
any iterable of them (streamed: never held whole). Annotations are label maps (a PNG
path or an array; see :mod:`vos.masks` for what values mean), for the first frame or,
as ``{frame_index: mask}``, for any frames where objects appear; ``removed`` stops
tracking objects from a frame on. Frame indices count the frames after ``stride``.

``text="the black swan"`` (object 1) or ``text={1: "the rider", 2: "the bike"}`` starts
objects from words instead of masks (see :mod:`vos.propagate` for the rule); given with
a mask for the same id, the mask is the referring image and the text joins it on every frame.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import torch
from tqdm import tqdm

from .errors import SettingsError
from .frames import FrameSource, as_frame_source
from .interactive import FramePrompt, InteractiveSession, check_prompts, read_prompts
from .masks import DEFAULT_MAX_OBJECTS, as_annotation, object_ids, read_annotation, write_mask
from .outputs import OutputDirError, read_record, write_json
from .propagate import PropagationConfig, Propagator, Segmenter
from .scores import write_scores

log = logging.getLogger(__name__)

# Written into a mask folder when a track starts (complete: false) and when it ends.
TRACK_RECORD = ".track.json"

Annotation = str | os.PathLike | np.ndarray
Texts = str | Mapping[int, str]


@dataclass
class TrackedFrame:
    """One segmented frame. Unpacks as ``index, labels``."""

    index: int  # position among the tracked frames
    name: str  # the frame's file stem, or its 5-digit number
    labels: np.ndarray  # (H, W) uint8 object ids
    object_ids: list[int]  # objects tracked on this frame, the row order of ``logits``
    logits: np.ndarray | None = None  # (N, H, W) float32 when asked for; +-inf where copied from an annotation

    def __iter__(self) -> Iterator[Any]:
        return iter((self.index, self.labels))

    @property
    def probabilities(self) -> np.ndarray | None:
        """(N, H, W) per-object probabilities (sigmoid of the logits), when logits were asked for."""
        return None if self.logits is None else 1.0 / (1.0 + np.exp(-self.logits))


@dataclass
class SavedTrack:
    """Where :meth:`Track.save` put a video's masks."""

    directory: Path
    names: list[str]
    object_ids: list[int]
    resumed: bool  # True when the folder already held this track and nothing was recomputed


class StreamedFrames:
    """Frames from any iterable, decoded one at a time; length unknown until the end."""

    path = None

    def __init__(self, frames: Iterable[np.ndarray]):
        self._frames = iter(frames)
        try:
            self._first = next(self._frames)
        except StopIteration:
            raise SettingsError("video: the iterable of frames is empty") from None
        self.size = tuple(np.asarray(self._first).shape[:2])
        self._used = False

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._used:
            raise SettingsError("video: an iterable of frames can be tracked only once; pass an array or a path "
                                "to track it again")
        self._used = True
        yield self._first
        yield from self._frames


@dataclass
class Track:
    """One video's propagation, run lazily: iterate it for frames as they come, or :meth:`save` them."""

    tracker: "Tracker"
    frames: FrameSource | StreamedFrames
    annotations: dict[int, np.ndarray]
    removed: dict[int, list[int]] = field(default_factory=dict)
    logits: bool = False
    texts: dict[int, str] = field(default_factory=dict)  # first-frame texts by object id

    def __iter__(self) -> Iterator[TrackedFrame]:
        propagator = Propagator(self.tracker.segmenter, self.tracker.propagation)
        names = getattr(self.frames, "names", None)
        encoded = encode_texts(self.tracker.segmenter, self.texts)
        for index, frame in enumerate(self.frames):
            annotation = self.annotations.get(index)
            texts = encoded if index == 0 else None
            if not propagator.ids and not texts and (annotation is None or not object_ids(annotation)):
                # Before the first object appears there is nothing to segment (no model call).
                height, width = np.asarray(frame).shape[:2]
                yield TrackedFrame(index, names[index] if names else f"{index:05d}", np.zeros((height, width), np.uint8),
                                   [], np.zeros((0, height, width), np.float32) if self.logits else None)
                continue
            labels = propagator.step(np.asarray(frame), annotation, self.removed.get(index, ()), texts)
            logits = propagator.logits.numpy() if self.logits else None
            yield TrackedFrame(index, names[index] if names else f"{index:05d}", labels, list(propagator.ids), logits)

    def fingerprint(self) -> dict[str, Any]:
        """What decides this track's masks: a folder holding another fingerprint holds another track."""
        return as_json({
            "video": video_identity(self.frames),
            "annotations": {str(i): digest(a) for i, a in sorted(self.annotations.items())},
            "removed": {str(i): ids for i, ids in sorted(self.removed.items())},
            **({"texts": {str(i): t for i, t in sorted(self.texts.items())}} if self.texts else {}),
            "model": self.tracker.description,
            "propagation": vars(self.tracker.propagation),
        })

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False, progress: bool = True,
             only: Iterable[str] | None = None, computed: Iterable[TrackedFrame] | None = None,
             scores: str | os.PathLike | None = None) -> SavedTrack:
        """Write ``directory/<frame>.png`` for every frame (DAVIS palette PNGs, each written atomically).

        ``only`` names the frames to write (every frame is still tracked): a benchmark scored
        on a subset of the frames (YouTube-VOS over all frames) writes that subset.
        ``computed`` are this track's frames computed elsewhere (a Ray worker); they are
        written as if this process had computed them. ``scores`` is a folder for each
        written frame's per-object probabilities (``<frame>.npz``, see :mod:`vos.scores`);
        the track must have been made with ``logits=True``.

        The folder records the track it holds: saving the same track again returns at
        once when it is complete and redoes it when it was interrupted; a folder with
        another track's (or another tool's) masks is refused unless ``overwrite``.
        """
        directory = Path(directory)
        only = None if only is None else sorted(set(only))
        fingerprint = self.fingerprint()
        if only is not None:
            fingerprint["written"] = only
        if scores is not None:
            if not self.logits:
                raise SettingsError("save(scores=...): make the track with logits=True to save its scores")
            fingerprint["scores"] = str(Path(scores).resolve())
        record = read_record(directory / TRACK_RECORD)
        if record and record.get("complete") and record.get("fingerprint") == fingerprint and \
                fingerprint["video"] is not None:
            return SavedTrack(directory, record["names"], record["object_ids"], resumed=True)
        check_claimable(directory, record, fingerprint, overwrite)
        write_json(directory / TRACK_RECORD, {"complete": False, "fingerprint": fingerprint})
        names, ids = [], set()
        total = len(self.frames) if isinstance(self.frames, FrameSource) else None
        keep = None if only is None else set(only)
        for tracked in tqdm(self if computed is None else computed, total=total, desc=directory.name, unit="frame",
                            leave=False, disable=not progress):
            ids.update(tracked.object_ids)
            if keep is None or tracked.name in keep:
                if scores is not None:
                    write_scores(Path(scores) / f"{tracked.name}.npz", tracked.object_ids, tracked.logits)
                write_mask(directory / f"{tracked.name}.png", tracked.labels)
                names.append(tracked.name)
        write_json(directory / TRACK_RECORD, {"complete": True, "fingerprint": fingerprint, "names": names,
                                              "object_ids": sorted(ids)})
        return SavedTrack(directory, names, sorted(ids), resumed=False)


@dataclass
class PromptedTrack(Track):
    """A track started from clicks, boxes and strokes on any frames (an :class:`InteractiveSession` run once).

    Every prompt is applied first (a prompt on a later frame corrects the object from there
    on), then the video is propagated forward from the first prompted frame; frames before
    it are empty.
    """

    prompts: list[FramePrompt] = field(default_factory=list)

    def __iter__(self) -> Iterator[TrackedFrame]:
        session = InteractiveSession(self.tracker.segmenter, self.frames, self.tracker.propagation)
        for prompt in sorted(self.prompts, key=lambda p: p.frame):
            prompt.apply(session)
        names = self.frames.names
        first = session.prompted_frames[0]
        for index in range(first):
            yield TrackedFrame(index, names[index], np.zeros(self.frames.size, np.uint8), [])
        for index, labels in session.propagate(first):
            yield TrackedFrame(index, names[index], labels, session.object_ids)

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "prompts": as_json([p.record() for p in self.prompts])}


def check_claimable(directory: Path, record: dict | None, fingerprint: dict, overwrite: bool) -> None:
    """Refuse a folder that holds another track, or files no track of ours wrote, unless ``overwrite``."""
    if directory.exists() and not directory.is_dir():
        raise OutputDirError(f"{directory}: the output path is a file, not a folder")
    if overwrite:
        return
    if record is not None:
        if record.get("fingerprint") != fingerprint or fingerprint["video"] is None:
            raise OutputDirError(f"{directory}: holds the masks of another track (other video, masks, model or "
                                 "settings); choose another folder or pass overwrite=True")
    elif directory.is_dir() and any(not p.name.startswith(".") for p in directory.iterdir()):
        raise OutputDirError(f"{directory}: the folder is not empty and holds no seem-vos track; choose another "
                             "folder or pass overwrite=True")


def video_identity(frames: FrameSource | StreamedFrames) -> Any:
    """The video's path with the frame selection, or a digest of in-memory frames; None for a stream."""
    if isinstance(frames, StreamedFrames):
        return None
    if frames.path is not None:
        return {"path": str(Path(frames.path).resolve()), "frames": len(frames), "names": frames.names}
    hasher = hashlib.sha1()
    for frame in frames:
        hasher.update(np.ascontiguousarray(frame).data)
    return {"frames": len(frames), "sha1": hasher.hexdigest()}


def digest(labels: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(labels).data).hexdigest() + f":{labels.shape[0]}x{labels.shape[1]}"


class Tracker:
    """A loaded SEEM model and the propagation settings; :meth:`track` runs it on a video."""

    def __init__(self, segmenter: Segmenter, propagation: PropagationConfig | None = None,
                 description: Mapping[str, Any] | None = None):
        self.segmenter = segmenter
        self.propagation = propagation or PropagationConfig()
        self.description = dict(description or {})

    def track(self, video: Any, masks: Annotation | Mapping[int, Annotation] | None = None, *,
              text: Texts | None = None, prompts: Any = None, stride: int = 1,
              max_frames: int | None = None, removed: Mapping[int, Iterable[int]] | None = None,
              logits: bool = False, max_objects: int = DEFAULT_MAX_OBJECTS,
              allow_truncated: bool = False) -> Track:
        """Prepare tracking ``video`` from ``masks`` and/or ``text``; nothing runs until it is iterated or saved.

        The video is opened, checked end to end when it is a file (a truncated video is an
        error unless ``allow_truncated``), every annotation is read and checked against
        the frame size, and the texts are checked (and the model's ability to take them)
        here, so bad input fails before any work.
        """
        texts = text_items(text, max_objects)
        if texts:
            check_text_support(self.segmenter)
        if prompts is not None:
            if masks is not None or texts:
                raise SettingsError("prompts: give clicks/boxes/strokes (prompts) or masks/text, not both")
            if logits:
                raise SettingsError("prompts: logits (and save_scores) are not available for tracks started "
                                    "from clicks")
            where = str(prompts) if isinstance(prompts, (str, os.PathLike)) else "prompts"
            frame_prompts = read_prompts(prompts, where)
            frames = open_video_input(video, stride, max_frames, allow_truncated)
            if not isinstance(frames, FrameSource):
                raise SettingsError("video: prompts need random access to frames: pass a path or an array")
            check_prompts(frame_prompts, frames, where)
            return PromptedTrack(self, frames, {}, {}, logits, {}, frame_prompts)
        frames = open_video_input(video, stride, max_frames, allow_truncated)
        annotations = {index: load_annotation(mask, frames.size, max_objects, f"masks[{index}]")
                       for index, mask in annotation_items(masks).items()}
        if not texts and not any(object_ids(labels) for labels in annotations.values()):
            raise SettingsError("masks: no annotation has an object (give at least one object's mask, or text=)")
        length = len(frames) if isinstance(frames, FrameSource) else None
        late = [i for i in list(annotations) + list(removed or {}) if i < 0 or (length is not None and i >= length)]
        if late:
            raise SettingsError(f"masks/removed: frame index {late[0]} is outside the video's {length} frames")
        removed = {int(i): [int(k) for k in ids] for i, ids in (removed or {}).items()}
        return Track(self, frames, annotations, removed, logits, texts)

    def session(self, video: Any, *, stride: int = 1, max_frames: int | None = None,
                allow_truncated: bool = False) -> InteractiveSession:
        """An interactive session on ``video`` (:mod:`vos.interactive`): prompts on any frame, propagation."""
        frames = open_video_input(video, stride, max_frames, allow_truncated)
        return InteractiveSession(self.segmenter, frames, self.propagation)


def text_items(text: Texts | None, max_objects: int) -> dict[int, str]:
    """``text`` as {object id: text}: one string is object 1."""
    if text is None:
        return {}
    items = {1: text} if isinstance(text, str) else text
    if not isinstance(items, Mapping) or not items:
        raise SettingsError(f"text: expected a string or a non-empty {{object id: text}} mapping, got {text!r}")
    texts = {}
    for key, value in items.items():
        try:
            object_id = int(key)
        except (TypeError, ValueError):
            raise SettingsError(f"text: object id {key!r} is not an integer") from None
        if not 1 <= object_id <= 254:
            raise SettingsError(f"text: object id {object_id} is outside 1..254")
        if not isinstance(value, str) or not value.strip():
            raise SettingsError(f"text: object {object_id} needs a non-empty string, got {value!r}")
        texts[object_id] = value
    if len(texts) > max_objects:
        raise SettingsError(f"text: {len(texts)} objects, more than max_objects={max_objects}")
    return texts


def check_text_support(segmenter: Segmenter) -> None:
    """Refuse, before any work, a segmenter that cannot take text prompts."""
    if not callable(getattr(segmenter, "encode_text", None)):
        raise SettingsError(f"text: {type(segmenter).__name__} cannot take text prompts")
    model = getattr(segmenter, "model", None)
    if model is not None:
        model.check_text_prompts()  # ConfigError for a model whose text path cannot work


def encode_texts(segmenter: Segmenter, texts: dict[int, str]) -> dict[int, Any]:
    """One text-encoder pass for all of a video's texts: {object id: its prompt}."""
    if not texts:
        return {}
    encoded = segmenter.encode_text(list(texts.values()))
    return {object_id: encoded.select([row]) for row, object_id in enumerate(texts)}


def annotation_items(masks: Annotation | Mapping[int, Annotation] | None) -> dict[int, Annotation]:
    if masks is None:
        return {}
    if isinstance(masks, Mapping):
        return {int(index): mask for index, mask in masks.items()}
    return {0: masks}


def load_annotation(mask: Annotation, size: tuple[int, int], max_objects: int, where: str) -> np.ndarray:
    """A label map from a path or an array, under the rules of :mod:`vos.masks`, at the frame size."""
    if isinstance(mask, (str, os.PathLike)):
        return read_annotation(mask, expected_size=size, max_objects=max_objects)
    labels = as_annotation(np.asarray(mask), where, max_objects)
    if labels.shape != tuple(size):
        raise SettingsError(f"{where}: mask is {labels.shape[0]}x{labels.shape[1]} (HxW) but the frames are "
                            f"{size[0]}x{size[1]}")
    return labels


def open_video_input(video: Any, stride: int, max_frames: int | None,
                     allow_truncated: bool) -> FrameSource | StreamedFrames:
    """A frame source for a path, an array or a list of frames; a one-pass stream for other iterables."""
    if isinstance(video, FrameSource):
        if stride != 1 or max_frames is not None:
            raise SettingsError(f"{video.where}: is already open; give stride and max_frames to open_frames")
        return video
    if isinstance(video, (str, os.PathLike, np.ndarray, list, tuple)):
        return as_frame_source(video, stride=stride, max_frames=max_frames, verify=True,
                               allow_truncated=allow_truncated)
    if isinstance(video, torch.Tensor):
        raise SettingsError("video: pass frames as numpy uint8 arrays (H, W, 3), not torch tensors")
    if stride != 1 or max_frames is not None:
        raise SettingsError("video: stride and max_frames need a path or an array, not a one-pass iterable")
    return StreamedFrames(video)


def as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), so records compare equal."""
    return json.loads(json.dumps(value, default=str))



def load(model: str | os.PathLike | Mapping[str, Any] = "seem_focalt", checkpoint: str | os.PathLike | None = None,
         *, device: str = "auto", precision: str = "fp32", winograd: bool = True, short_side: int = 512,
         memory: str = "first", threshold: float = 0.0, seed: int = 0, text_every_frame: bool = False,
         checkpoint_option: str = "checkpoint") -> Tracker:
    """A :class:`Tracker` for a registry model (``vos.model_names()``), a model file or node, or an
    official SEEM YAML with ``checkpoint``; the checkpoint defaults to the model's released file.

    The checkpoint is resolved (downloaded when needed) and loaded here, so a missing or
    mismatched file fails now; ``checkpoint_option`` is how the caller's users name it.
    """
    from seem_core.segmenter import check_precision

    from .models import ModelSpec, load_segmenter, model_spec, resolved_checkpoint
    from .settings import resolve_device

    propagation = PropagationConfig(memory, threshold, seed, text_every_frame)
    device = resolve_device(device)
    try:
        check_precision(torch.device(device), precision)
    except ValueError as err:
        raise SettingsError(f"precision={precision}: {err}") from None
    spec = model_spec(model, checkpoint)
    spec = ModelSpec(spec.architecture, resolved_checkpoint(spec, checkpoint_option), spec.name)
    segmenter = load_segmenter(spec, config_key=checkpoint_option, device=device, precision=precision,
                               winograd=winograd, short_side=short_side)
    description = {"model": spec.record(), "precision": precision, "short_side": short_side}
    return Tracker(segmenter, propagation, description)
