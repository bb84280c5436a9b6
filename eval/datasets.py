"""Where a benchmark keeps its frames, annotations and sequence lists.

One module owns each dataset's folder layout, so the pipeline reads the frames and
first-frame masks and the evaluator scores against the annotations of the same split at
the same resolution (masks written from ``Full-Resolution`` frames are scored against
``Full-Resolution`` annotations, never silently against ``480p``).

:class:`DatasetLayout` is what both sides need; each benchmark is one small class that
implements it (:class:`DavisLayout` today).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

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
        folder = self.frames_dir(sequence)
        return sorted(p.stem for p in folder.glob("*.jpg") if p.is_file())

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

