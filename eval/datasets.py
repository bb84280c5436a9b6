"""Where a benchmark keeps its frames, annotations and sequence lists.

One module owns each dataset's folder layout, so the pipeline reads the frames and
first-frame masks and the evaluator scores against the annotations of the same split at
the same resolution (masks written from ``Full-Resolution`` frames are scored against
``Full-Resolution`` annotations, never silently against ``480p``).

:class:`DatasetLayout` is what both sides need; each benchmark is one small class that
implements it. Besides DAVIS (:class:`DavisLayout`, scored with the official toolkit's
numbers), :class:`YouTubeVOSLayout` (2018/2019 ``valid``, objects starting at their first
listed frame, optionally over ``valid_all_frames``) and :class:`FolderLayout` (MOSE, LVOS and
any ``JPEGImages/`` + ``Annotations/`` folder) describe what a benchmark run needs: where each
object is given (:meth:`prompt_frames`), which frames are written, where the masks go, the
submission zip's layout, and whether there is local ground truth to score against.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from eval.files import MaskFileError, read_label_png

TASKS = ("semi-supervised", "unsupervised")


class EvaluationError(ValueError):
    """Input the evaluator cannot score; the message names the sequence, the file and the problem."""


@runtime_checkable
class DatasetLayout(Protocol):
    """A benchmark on disk: its sequences, and per sequence its frame and annotation folders."""

    root: Path

    def sequences(self) -> list[str]:
        """Sequence names of the selected split, in the dataset's order."""
        ...

    def frames_dir(self, sequence: str) -> Path:
        """Folder of the sequence's frame images."""
        ...

    def annotations_dir(self, sequence: str, task: str = "semi-supervised") -> Path:
        """Folder of the sequence's label PNGs for ``task``."""
        ...

    def check(self, task: str = "semi-supervised", sequences: Iterable[str] | None = None) -> list[str]:
        """The sequences to use, after checking every folder they need exists; raises EvaluationError."""
        ...


@runtime_checkable
class BenchmarkLayout(DatasetLayout, Protocol):
    """What a benchmark run needs beyond the folders: prompts, written frames, outputs, scoring."""

    results_subdir: str  # the masks go to <output>/<results_subdir>/<sequence>/<frame>.png
    submission_root: str | None  # zip entries <submission_root>/<seq>/<frame>.png ("": at the top); None: no zip

    def prompt_frames(self, sequence: str) -> dict[str, Path]:
        """Frame name -> label PNG for every frame where an object is given (its first annotation)."""
        ...

    def written_frames(self, sequence: str) -> list[str] | None:
        """Names of the frames whose masks are written (None: every tracked frame)."""
        ...

    def scored_locally(self) -> bool:
        """Whether this split ships ground truth the run can be scored against here."""
        ...


def check_task(task: str) -> None:
    if task not in TASKS:
        raise EvaluationError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


def _require_dir(folder: Path, what: str, *, name_choices: bool = False) -> None:
    """Fail naming ``folder``; with ``name_choices``, also the folders present beside it."""
    if folder.is_dir():
        return
    hint = ""
    if name_choices and folder.parent.is_dir():
        present = sorted(p.name for p in folder.parent.iterdir() if p.is_dir())
        hint = f"; {folder.parent} has {', '.join(present) or 'no folder'}"
    raise EvaluationError(f"{folder} not found ({what}{hint})")


@dataclass(frozen=True)
class DavisLayout:
    """A DAVIS folder: ``ImageSets/<year>/<split>.txt``, ``JPEGImages/<res>/<seq>/*.jpg``,
    ``Annotations/<res>/<seq>/*.png`` (``Annotations_unsupervised`` for the unsupervised task)."""

    root: Path
    year: str = "2017"
    split: str = "val"
    resolution: str = "480p"

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "year", str(self.year))

    def sequence_list(self) -> Path:
        return self.root / "ImageSets" / self.year / f"{self.split}.txt"

    def sequences(self) -> list[str]:
        path = self.sequence_list()
        try:
            names = [line.strip() for line in path.read_text().splitlines()]
        except OSError as err:
            raise EvaluationError(f"{path}: cannot read the sequence list ({err.strerror or err})") from None
        names = [n for n in names if n]
        if not names:
            raise EvaluationError(f"{path}: the sequence list is empty")
        return names

    results_subdir = ""
    submission_root = None  # val is scored here; test-dev zips are left to the user

    def frames_root(self) -> Path:
        return self.root / "JPEGImages" / self.resolution

    def annotations_root(self, task: str = "semi-supervised") -> Path:
        check_task(task)
        folder = "Annotations" if task == "semi-supervised" else "Annotations_unsupervised"
        return self.root / folder / self.resolution

    def frames_dir(self, sequence: str) -> Path:
        return self.frames_root() / sequence

    def annotations_dir(self, sequence: str, task: str = "semi-supervised") -> Path:
        return self.annotations_root(task) / sequence

    def frame_names(self, sequence: str) -> list[str]:
        """Names (stems) of the sequence's JPEG frames, sorted: the frames DAVIS scores."""
        return jpeg_stems(self.frames_dir(sequence))

    def prompt_frames(self, sequence: str) -> dict[str, Path]:
        """The semi-supervised protocol gives each sequence's first annotated frame only."""
        first = first_png(self.annotations_dir(sequence))
        return {first.stem: first}

    def written_frames(self, sequence: str) -> list[str] | None:
        return None

    def scored_locally(self) -> bool:
        return True

    def check(self, task: str = "semi-supervised", sequences: Iterable[str] | None = None) -> list[str]:
        """Root, sequence list, and each sequence's frame and annotation folders, at this resolution."""
        check_task(task)
        if not self.root.is_dir():
            raise EvaluationError(f"DAVIS root {self.root} not found")
        names = self.sequences() if sequences is None else list(sequences)
        _require_dir(self.frames_root(), f"DAVIS frames at resolution {self.resolution}", name_choices=True)
        _require_dir(self.annotations_root(task), f"{task} annotations at resolution {self.resolution}",
                     name_choices=True)
        for name in names:
            _require_dir(self.frames_dir(name), f"frames of sequence {name}")
            _require_dir(self.annotations_dir(name, task), f"{task} annotations of sequence {name}")
        return names


def first_png(folder: Path) -> Path:
    pngs = sorted(folder.glob("*.png"))
    if not pngs:
        raise MaskFileError(f"{folder}: no annotation PNG")
    return pngs[0]


def jpeg_stems(folder: Path) -> list[str]:
    """Names (stems) of a folder's JPEG files, sorted."""
    return sorted(p.stem for p in folder.glob("*.jpg") if p.is_file())


def object_starts(annotations: Path) -> dict[int, str]:
    """Object id -> the first annotation (frame name) where it appears, from every PNG of a folder.

    Void (255) is not an object; a 0/255 file is read as the label map it is (ids 0 and 255).
    """
    starts: dict[int, str] = {}
    for path in sorted(annotations.glob("*.png")):
        for object_id in np.unique(read_label_png(path)).tolist():
            if object_id not in (0, 255) and object_id not in starts:
                starts[int(object_id)] = path.stem
    return starts


@dataclass(frozen=True)
class FolderLayout:
    """``<root>[/<split>]/JPEGImages/<video>/*.jpg`` with ``Annotations/<video>/*.png`` beside it.

    Each object is given at its first annotation, wherever that is (MOSE's valid split
    annotates the first frame only; LVOS's and a user's folder may annotate every frame).
    With ``ground_truth``, ``Annotations`` hold the ground truth of the frames it has, and
    the run is scored here (see :mod:`eval.objects`); ``submission_root`` names the zip's
    layout when the benchmark is scored on a server.
    """

    root: Path
    split: str = ""  # the sub-folder holding JPEGImages and Annotations ("" for the root itself)
    ground_truth: bool = False
    submission_root: str | None = None
    results_subdir: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def base(self) -> Path:
        return self.root / self.split if self.split else self.root

    def sequences(self) -> list[str]:
        folder = self.base() / "JPEGImages"
        _require_dir(folder, "the frame folders, one per video", name_choices=True)
        names = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if not names:
            raise EvaluationError(f"{folder}: no video folder")
        return names

    def frames_dir(self, sequence: str) -> Path:
        return self.base() / "JPEGImages" / sequence

    def annotations_dir(self, sequence: str, task: str = "semi-supervised") -> Path:
        check_task(task)
        return self.base() / "Annotations" / sequence

    def frame_names(self, sequence: str) -> list[str]:
        return jpeg_stems(self.frames_dir(sequence))

    def object_starts(self, sequence: str) -> dict[int, str]:
        starts = object_starts(self.annotations_dir(sequence))
        if not starts:
            raise MaskFileError(f"{self.annotations_dir(sequence)}: no annotation PNG with an object")
        return starts

    def prompt_frames(self, sequence: str) -> dict[str, Path]:
        folder = self.annotations_dir(sequence)
        if not self.ground_truth:  # only the prompts are there: no need to read them all here
            first_png(folder)  # fails naming the folder when it has none
            return {p.stem: p for p in sorted(folder.glob("*.png"))}
        return {name: folder / f"{name}.png" for name in sorted(set(self.object_starts(sequence).values()))}

    def written_frames(self, sequence: str) -> list[str] | None:
        return None

    def scored_locally(self) -> bool:
        return self.ground_truth

    def check(self, task: str = "semi-supervised", sequences: Iterable[str] | None = None) -> list[str]:
        check_task(task)
        if not self.root.is_dir():
            raise EvaluationError(f"dataset root {self.root} not found")
        _require_dir(self.base(), "the split folder", name_choices=True)
        names = self.sequences() if sequences is None else list(sequences)
        for name in names:
            _require_dir(self.frames_dir(name), f"frames of video {name}")
            _require_dir(self.annotations_dir(name, task), f"annotations of video {name}")
        return names


VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


@dataclass(frozen=True)
class VideoFilesLayout:
    """A folder of video files, each with its first frame's label PNG beside it: ``<root>/<video>.mp4`` and
    ``<root>/<video>.png``. Nothing to score (no ground truth); masks go to ``<output>/<video>/<frame>.png``
    with frames named 00000, 00001, ... by their index in the video."""

    root: Path
    results_subdir: str = ""
    submission_root: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def sequences(self) -> list[str]:
        _require_dir(self.root, "the folder of video files")
        names = sorted(p.stem for p in self.root.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not names:
            raise EvaluationError(f"{self.root}: no video file ({', '.join(VIDEO_SUFFIXES)})")
        return names

    def frames_dir(self, sequence: str) -> Path:
        """The video file itself (the pipeline reads files and frame folders alike)."""
        matches = [p for p in sorted(self.root.glob(f"{sequence}.*")) if p.suffix.lower() in VIDEO_SUFFIXES]
        if len(matches) != 1:
            raise EvaluationError(f"{self.root}: {len(matches)} video files named {sequence}.*; expected one")
        return matches[0]

    def annotations_dir(self, sequence: str, task: str = "semi-supervised") -> Path:
        check_task(task)
        return self.root

    def prompt_frames(self, sequence: str) -> dict[str, Path]:
        return {"00000": self.root / f"{sequence}.png"}

    def written_frames(self, sequence: str) -> list[str] | None:
        return None

    def scored_locally(self) -> bool:
        return False

    def check(self, task: str = "semi-supervised", sequences: Iterable[str] | None = None) -> list[str]:
        check_task(task)
        names = self.sequences() if sequences is None else list(sequences)
        for name in names:
            self.frames_dir(name)
            if not (self.root / f"{name}.png").is_file():
                raise EvaluationError(f"{self.root / name}.png not found (the first-frame mask of {name})")
        return names


@dataclass(frozen=True)
class YouTubeVOSLayout:
    """YouTube-VOS 2018/2019: ``<root>/<split>/{JPEGImages,Annotations}/<video>/`` and ``<split>/meta.json``.

    ``meta.json`` lists each object's frames; an object is given at the first of them, in
    the PNG of that frame. The official ``valid`` split has every 5th frame; with
    ``all_frames`` the frames come from ``<split>_all_frames/JPEGImages`` and only the
    frames of ``<split>/JPEGImages`` (the ones the server scores) are written, unless
    ``write_all``. There is no ground truth for ``valid``: it is scored on the server
    from the zip of ``Annotations/<video>/<frame>.png``.
    """

    root: Path
    split: str = "valid"
    all_frames: bool = False
    write_all: bool = False

    results_subdir = "Annotations"
    submission_root = "Annotations"

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def meta_path(self) -> Path:
        return self.root / self.split / "meta.json"

    @functools.cached_property
    def _videos(self) -> dict:
        return self.meta()

    def meta(self) -> dict:
        """``meta.json``'s videos (read once per layout through :meth:`object_starts`)."""
        path = self.meta_path()
        try:
            meta = json.loads(path.read_text())
            videos = meta["videos"]
        except OSError as err:
            raise EvaluationError(f"{path}: cannot read the video list ({err.strerror or err})") from None
        except (ValueError, KeyError, TypeError):
            raise EvaluationError(f"{path}: not a YouTube-VOS meta.json ({{\"videos\": {{...}}}} expected)") from None
        if not isinstance(videos, dict) or not videos:
            raise EvaluationError(f"{path}: lists no video")
        return videos

    def sequences(self) -> list[str]:
        return sorted(self._videos)

    def frames_dir(self, sequence: str) -> Path:
        split = f"{self.split}_all_frames" if self.all_frames else self.split
        return self.root / split / "JPEGImages" / sequence

    def annotations_dir(self, sequence: str, task: str = "semi-supervised") -> Path:
        if task != "semi-supervised":
            raise EvaluationError(f"YouTube-VOS has the semi-supervised task only, not {task!r}")
        return self.root / self.split / "Annotations" / sequence

    def object_starts(self, sequence: str) -> dict[int, str]:
        objects = self._videos[sequence].get("objects") or {}
        try:
            return {int(k): str(v["frames"][0]) for k, v in objects.items()}
        except (KeyError, IndexError, TypeError, ValueError):
            raise EvaluationError(f"{self.meta_path()}: video {sequence} has an object without frames") from None

    def prompt_frames(self, sequence: str) -> dict[str, Path]:
        folder = self.annotations_dir(sequence)
        return {name: folder / f"{name}.png" for name in sorted(set(self.object_starts(sequence).values()))}

    def written_frames(self, sequence: str) -> list[str] | None:
        if self.all_frames and not self.write_all:
            return jpeg_stems(self.root / self.split / "JPEGImages" / sequence)
        return None

    def scored_locally(self) -> bool:
        return False

    def check(self, task: str = "semi-supervised", sequences: Iterable[str] | None = None) -> list[str]:
        if not self.root.is_dir():
            raise EvaluationError(f"YouTube-VOS root {self.root} not found")
        names = self.sequences() if sequences is None else list(sequences)
        for name in names:
            _require_dir(self.frames_dir(name), f"frames of video {name}")
            if self.all_frames and not self.write_all:
                _require_dir(self.root / self.split / "JPEGImages" / name, f"the frames the server scores of {name}")
            for frame, path in self.prompt_frames(name).items():
                if not path.is_file():
                    raise EvaluationError(f"{path} not found (meta.json starts an object of {name} at {frame})")
        return names
