"""Interactive video segmentation: prompt any object on any frame, propagate, correct, propagate again.

    session = vos.load("seem_focalt").session("clip.mp4")
    labels = session.add(0, 1, points=[(120, 80)], labels=[1])     # frame 0's label map, at once
    for index, labels in session.propagate():                      # forward from the first prompted frame
        ...
    session.add(30, 1, points=[(200, 40)], labels=[0])             # a negative click where the track drifted
    for index, labels in session.propagate(start=30):              # frames >= 30 change, earlier ones keep
        ...
    session.propagate(start=30, reverse=True)                      # or backward: frames <= 30

A prompt on a frame is a mask, clicks (positive and negative), a box or a stroke
(:mod:`seem_core.spatial_prompts`); clicks and shapes given for one object on one frame
add up. The frame is segmented with SEEM's spatial path (the official v1 interactive
call on v1 models, the demo decoder otherwise; see the README), and the object's
resulting mask on that frame is encoded as a referring-image prompt: propagating
forward, every frame after it is decoded against all of the object's references from
frames up to it (their logits averaged, as :mod:`vos.propagate` does), so a correction
carries forward; backward, the references from frames at or after it. With
``propagation.memory=first+previous`` the previously propagated frame's mask of each
object joins as one more prompt, as in :mod:`vos.propagate`. A prompted frame keeps
the prompted object's mask; other objects on it are predicted.

Memory: frames are decoded when needed, never kept. The session keeps each frame's
label map zlib-compressed (a few kB for a 480p frame of a few objects) and one
referring prompt per prompted (frame, object): ``(1 + levels x 512) x hidden`` floats,
about 3 MB for the released models (hidden 512), whatever the frame size.
"""
from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seem_core import spatial_prompts
from seem_core.segmenter import ObjectPrompt
from seem_core.spatial_prompts import PromptError, SpatialPrompt
from seem_core.visual_sampler import VisualPrompt

from .errors import SettingsError
from .frames import FrameSource
from .masks import as_annotation
from .propagate import PropagationConfig, fuse_by_owner, label_map


@dataclass(frozen=True)
class PackedLabels:
    """A label map kept zlib-compressed: a long video's results cost little memory."""

    shape: tuple[int, int]
    data: bytes

    @staticmethod
    def pack(labels: np.ndarray) -> "PackedLabels":
        return PackedLabels(tuple(labels.shape), zlib.compress(np.ascontiguousarray(labels, np.uint8).data, 1))

    def unpack(self) -> np.ndarray:
        return np.frombuffer(zlib.decompress(self.data), np.uint8).reshape(self.shape).copy()


def spatial_prompt(size: tuple[int, int], points, labels, box, stroke, width: float) -> SpatialPrompt:
    """Clicks, a box and a stroke on a frame of ``size`` as one spatial prompt (each checked)."""
    parts = []
    if points is not None or labels is not None:
        if points is None or labels is None:
            raise PromptError("clicks need both points and labels")
        parts.append(spatial_prompts.clicks(points, labels, size))
    if box is not None:
        parts.append(spatial_prompts.box(box, size))
    if stroke is not None:
        parts.append(spatial_prompts.stroke(stroke, width, size))
    if not parts:
        raise PromptError("no prompt: give points and labels, a box, a stroke or a mask")
    combined = parts[0]
    for part in parts[1:]:
        combined = combined | part
    return combined


def check_object_id(object_id: Any) -> None:
    if isinstance(object_id, bool) or not isinstance(object_id, (int, np.integer)) or not 1 <= object_id <= 254:
        raise PromptError(f"object id {object_id!r} must be an integer in 1..254")


class InteractiveSession:
    """Prompts, references and results of one video; see the module docstring for the rules."""

    def __init__(self, segmenter: Any, frames: FrameSource, propagation: PropagationConfig | None = None):
        if not isinstance(frames, FrameSource):
            raise SettingsError("video: an interactive session needs random access to frames: pass a video "
                                "file, a frame folder or an array, not a one-pass iterable")
        self.segmenter = segmenter
        self.frames = frames
        self.config = propagation or PropagationConfig()
        self.reset()

    def reset(self) -> None:
        """Forget every prompt, reference and result (the video stays open)."""
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self._spatial: dict[tuple[int, int], SpatialPrompt] = {}  # (frame, object) -> clicks and shapes so far
        self._prompted: dict[int, dict[int, PackedLabels]] = {}  # frame -> object -> its prompted mask (0/1)
        self._references: dict[int, dict[int, VisualPrompt]] = {}  # object -> frame -> referring prompt
        self._results: dict[int, PackedLabels] = {}  # frame -> label map

    # ------------------------------------------------------------------ state
    @property
    def object_ids(self) -> list[int]:
        return sorted(self._references)

    @property
    def prompted_frames(self) -> list[int]:
        return sorted(self._prompted)

    def labels(self, index: int) -> np.ndarray:
        """The label map of a frame as it stands (zeros where nothing was segmented yet)."""
        self._check_frame(index)
        packed = self._results.get(index)
        return packed.unpack() if packed is not None else np.zeros(self.frames.size, np.uint8)

    # ------------------------------------------------------------------ prompts
    def add(self, index: int, object_id: int, *, points: Sequence[Sequence[float]] | None = None,
            labels: Sequence[int] | None = None, box: Sequence[float] | None = None,
            stroke: Sequence[Sequence[float]] | None = None, stroke_width: float = 7.0,
            mask: np.ndarray | None = None, text: str | None = None) -> np.ndarray:
        """Prompt one object on one frame and return that frame's label map.

        ``points`` (x, y) with ``labels`` (1 positive, 0 negative), ``box`` (x0, y0, x1,
        y1) and ``stroke`` (a polyline of (x, y), ``stroke_width`` pixels wide) add to the
        object's earlier clicks and shapes on this frame; ``mask`` (H, W) replaces them
        and is taken as the object's mask as it is. ``text`` (alone or with clicks and
        shapes) joins as SEEM's text prompt; the choosing order is SEEM's (a positive
        click or shape, else the object's nearest reference, else the text).
        """
        self._check_frame(index)
        check_object_id(object_id)
        size = self.frames.size
        frame = self.frames[index]
        encoded = self.segmenter.encode_frame(frame)
        if mask is not None:
            if points is not None or box is not None or stroke is not None or text is not None:
                raise PromptError("give a mask or clicks/box/stroke/text, not both")
            region = as_annotation(np.asarray(mask), "mask", 254) > 0
            if region.shape != size:
                raise PromptError(f"mask is {region.shape[0]}x{region.shape[1]} (HxW) but the frames are "
                                  f"{size[0]}x{size[1]}")
            self._spatial.pop((index, object_id), None)
        else:
            given = points is not None or labels is not None or box is not None or stroke is not None
            spatial = spatial_prompt(size, points, labels, box, stroke, stroke_width) if given or text is None \
                else None
            earlier = self._spatial.get((index, object_id))
            if spatial is not None and earlier is not None:
                spatial = earlier | spatial
            region = self._segment_prompts(encoded, index, object_id, spatial or earlier, text)
            if spatial is not None:
                self._spatial[(index, object_id)] = spatial
        references = self._references.setdefault(object_id, {})
        if region.any():
            references[index] = self.segmenter.encode_reference(encoded, region[None], generator=self.generator)
        elif mask is not None:
            raise PromptError(f"frame {index}, object {object_id}: the mask is empty")
        else:  # the clicks say the object is not on this frame: no pixel there, and no reference from it
            references.pop(index, None)
        self._prompted.setdefault(index, {})[object_id] = PackedLabels.pack(region.astype(np.uint8))
        updated = self.labels(index)
        updated[updated == object_id] = 0
        updated[region] = object_id
        self._results[index] = PackedLabels.pack(updated)
        return updated

    def remove(self, object_id: int) -> None:
        """Forget an object: its prompts, references and pixels in every result."""
        if object_id not in self._references:
            raise SettingsError(f"object {object_id} is not in this session (objects: {self.object_ids})")
        del self._references[object_id]
        self._spatial = {key: value for key, value in self._spatial.items() if key[1] != object_id}
        for index in list(self._prompted):
            self._prompted[index].pop(object_id, None)
            if not self._prompted[index]:
                del self._prompted[index]
        for index, packed in self._results.items():
            labels = packed.unpack()
            if (labels == object_id).any():
                labels[labels == object_id] = 0
                self._results[index] = PackedLabels.pack(labels)

    # ------------------------------------------------------------------ propagation
    def propagate(self, start: int | None = None, *, reverse: bool = False,
                  max_frames: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Segment frames from ``start`` on (backward with ``reverse``), yielding ``(index, labels)``.

        ``start`` defaults to the first prompted frame (the last one with ``reverse``);
        ``max_frames`` stops after that many frames. Frames outside the range keep
        their label maps.
        """
        if not self._references:
            raise SettingsError("nothing to propagate: add a prompt first")
        if start is None:
            start = self.prompted_frames[-1] if reverse else self.prompted_frames[0]
        self._check_frame(start)
        stop = -1 if reverse else len(self.frames)
        indices = range(start, stop, -1 if reverse else 1)
        if max_frames is not None:
            indices = indices[:max_frames]
        previous: dict[int, VisualPrompt] = {}  # memory=first+previous: the last frame's masks as prompts
        for index in indices:
            labels, previous = self._predict(index, reverse, previous)
            self._results[index] = PackedLabels.pack(labels)
            yield index, labels

    def _predict(self, index: int, reverse: bool,
                 previous: dict[int, VisualPrompt]) -> tuple[np.ndarray, dict[int, VisualPrompt]]:
        """One frame: every object with a reference on this side of it, its prompted mask where it has one.

        Returns the label map and, with ``memory=first+previous``, this frame's prompts for the next.
        """
        prompted = self._prompted.get(index, {})
        rows, owners = [], []
        for object_id, references in sorted(self._references.items()):  # objects with no reference: none usable
            if object_id in prompted:
                continue
            usable = [f for f in references if (f >= index if reverse else f <= index)]
            rows.extend(references[f] for f in sorted(usable))
            owners.extend([object_id] * len(usable))
            if usable and object_id in previous:
                rows.append(previous[object_id])
                owners.append(object_id)
        ids = sorted(set(owners))
        labels = np.zeros(self.frames.size, np.uint8)
        encoded = self.segmenter.encode_frame(self.frames[index])
        if ids:
            result = self.segmenter.segment(encoded, VisualPrompt.concat(rows))
            logits = fuse_by_owner(result.logits, torch.tensor(owners, dtype=torch.long), ids)
            labels = label_map(logits, ids, self.config.threshold)
        for object_id, packed in sorted(prompted.items()):
            labels[packed.unpack() > 0] = object_id
        if self.config.memory != "first+previous":
            return labels, {}
        visible = [i for i in self._references if (labels == i).any()]
        if not visible:
            return labels, {}
        masks = labels[None] == np.asarray(visible, dtype=np.int64).reshape(-1, 1, 1)
        prompt = self.segmenter.encode_reference(encoded, masks, generator=self.generator)
        return labels, {object_id: prompt.select([n]) for n, object_id in enumerate(visible)}

    # ------------------------------------------------------------------ helpers
    def _segment_prompts(self, encoded: Any, index: int, object_id: int, spatial: SpatialPrompt | None,
                         text: str | None) -> np.ndarray:
        """The object's mask on this frame from its clicks and shapes and/or a text (with its nearest
        reference on another frame when it has one)."""
        references = self._references.get(object_id, {})
        earlier = [f for f in references if f != index]
        reference = None
        if earlier:  # the nearest other reference helps where clicks are only negative
            reference = references[min(earlier, key=lambda f: abs(f - index))]
        encoded_text = None
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                raise PromptError(f"text must be a non-empty string, got {text!r}")
            encoded_text = self.segmenter.encode_text([text])
        prompt = ObjectPrompt(reference=reference, spatial=spatial, text=encoded_text)
        if (spatial is None or not spatial.has_positive) and reference is None and encoded_text is None:
            raise PromptError(f"frame {index}, object {object_id}: negative clicks alone cannot select an object; "
                              "add a positive click, a box, a stroke, a text or a mask")
        result = self.segmenter.segment_objects(encoded, [prompt], generator=self.generator)
        return (result.logits[0] > self.config.threshold).numpy()

    def _check_frame(self, index: int) -> None:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(self.frames):
            raise PromptError(f"frame index {index!r} is outside the video's {len(self.frames)} frames")

# --------------------------------------------------------------------------- prompt files

PROMPT_KEYS = {"object", "frame", "points", "labels", "box", "stroke", "stroke_width"}


@dataclass(frozen=True)
class FramePrompt:
    """One object's clicks and shapes on one frame, as a prompts file or list gives them."""

    object_id: int
    frame: int
    points: list | None = None
    labels: list | None = None
    box: list | None = None
    stroke: list | None = None
    stroke_width: float = 7.0

    def apply(self, session: InteractiveSession) -> np.ndarray:
        return session.add(self.frame, self.object_id, points=self.points, labels=self.labels, box=self.box,
                           stroke=self.stroke, stroke_width=self.stroke_width)

    def record(self) -> dict[str, Any]:
        return {"object": self.object_id, "frame": self.frame, **{k: v for k, v in (
            ("points", self.points), ("labels", self.labels), ("box", self.box), ("stroke", self.stroke))
            if v is not None}, **({"stroke_width": self.stroke_width} if self.stroke is not None else {})}


def read_prompts_file(path: str | os.PathLike) -> Any:
    """The JSON of a prompts file; an unreadable file or invalid JSON is a SettingsError naming it."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as err:
        raise SettingsError(f"{path}: cannot read the prompts file ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise SettingsError(f"{path}: not valid JSON ({err})") from None


def read_prompts(source: Any, where: str = "prompts") -> list[FramePrompt]:
    """Prompts from a JSON file path or a list of ``{"object", "frame", "points", "labels", "box", "stroke"}``."""
    if isinstance(source, (str, os.PathLike)):
        where = str(source)
        source = read_prompts_file(source)
    if not isinstance(source, list) or not source:
        raise SettingsError(f"{where}: expected a non-empty list of prompts like "
                            '{"object": 1, "frame": 0, "points": [[x, y]], "labels": [1]}')
    prompts = []
    for n, entry in enumerate(source):
        if not isinstance(entry, dict):
            raise SettingsError(f"{where}: prompt {n} is not an object")
        unknown = sorted(set(entry) - PROMPT_KEYS)
        if unknown:
            raise SettingsError(f"{where}: prompt {n} has unknown key(s) {', '.join(unknown)}; "
                                f"known: {', '.join(sorted(PROMPT_KEYS))}")
        for key in ("object", "frame"):
            if isinstance(entry.get(key), bool) or not isinstance(entry.get(key), int):
                raise SettingsError(f"{where}: prompt {n} needs an integer {key!r}, got {entry.get(key)!r}")
        prompts.append(FramePrompt(entry["object"], entry["frame"], entry.get("points"), entry.get("labels"),
                                   entry.get("box"), entry.get("stroke"), entry.get("stroke_width", 7.0)))
    return prompts


def check_prompts(prompts: list[FramePrompt], frames: FrameSource, where: str) -> None:
    """Every prompt's object id, frame index and shapes are usable on ``frames`` (nothing is segmented)."""
    for n, prompt in enumerate(prompts):
        try:
            check_object_id(prompt.object_id)
            if not 0 <= prompt.frame < len(frames):
                raise PromptError(f"frame index {prompt.frame} is outside the video's {len(frames)} frames")
            spatial_prompt(frames.size, prompt.points, prompt.labels, prompt.box,
                                               prompt.stroke, prompt.stroke_width)
        except (PromptError, TypeError, ValueError) as err:
            raise SettingsError(f"{where}: prompt {n} (object {prompt.object_id}, frame {prompt.frame}): {err}") \
                from None

