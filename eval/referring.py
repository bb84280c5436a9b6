"""Referring-expression VOS benchmarks: which videos, which expressions, which frames and ground truth.

Both benchmarks are read in the layout Ref-YouTube-VOS releases (and in which the
common Ref-DAVIS17 preparation, e.g. ReferFormer's, lays out Ref-DAVIS17)::

    <root>/<split>/JPEGImages/<video>/<frame>.jpg
    <root>/<split>/Annotations/<video>/<frame>.png              (where ground truth is public)
    <root>/meta_expressions/<split>/meta_expressions.json

``meta_expressions.json`` is ``{"videos": {video: {"frames": [...], "expressions":
{exp_id: {"exp": text, "obj_id": id?}}}}}``. An expression with an ``obj_id`` whose
video has annotations is scored against that object's masks (binary J&F); the
others (Ref-YouTube-VOS valid, whose ground truth is on its server) are only written.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .datasets import EvaluationError

REFERRING_DATASETS = ("refyoutubevos", "refdavis17")


@dataclass(frozen=True)
class Expression:
    """One referring expression of one video."""

    video: str
    exp_id: str
    text: str
    obj_id: int | None  # the annotated object it refers to, where known


@dataclass(frozen=True)
class ReferringLayout:
    """A referring-expression benchmark on disk (see the module docstring for the layout)."""

    root: Path
    split: str = "valid"

    @property
    def meta_path(self) -> Path:
        return self.root / "meta_expressions" / self.split / "meta_expressions.json"

    def frames_dir(self, video: str) -> Path:
        return self.root / self.split / "JPEGImages" / video

    def annotations_dir(self, video: str) -> Path:
        return self.root / self.split / "Annotations" / video

    def frames(self, video: str) -> list[str]:
        """The frames the benchmark scores, as ``meta_expressions.json`` lists them."""
        return list(self._meta()[video]["frames"])

    def expressions(self) -> list[Expression]:
        """Every expression of the split, videos in name order, expressions in id order; checked."""
        meta = self._meta()
        result = []
        for video in sorted(meta):
            if not self.frames_dir(video).is_dir():
                raise EvaluationError(f"{self.frames_dir(video)}: frame folder of video {video!r} not found")
            entries = meta[video].get("expressions")
            if not isinstance(entries, dict) or not entries:
                raise EvaluationError(f"{self.meta_path}: video {video!r} has no expressions")
            for exp_id in sorted(entries, key=lambda k: (len(k), k)):
                entry = entries[exp_id]
                text = entry.get("exp") if isinstance(entry, dict) else None
                if not isinstance(text, str) or not text.strip():
                    raise EvaluationError(f"{self.meta_path}: video {video!r} expression {exp_id!r} has no text")
                obj_id = entry.get("obj_id")
                result.append(Expression(video, str(exp_id), text, None if obj_id is None else int(obj_id)))
        return result

    def _meta(self) -> dict:
        try:
            meta = json.loads(self.meta_path.read_text())
        except OSError:
            raise EvaluationError(f"{self.meta_path}: meta_expressions.json not found (dataset.root should hold "
                                  f"meta_expressions/{self.split}/ and {self.split}/JPEGImages/)") from None
        except json.JSONDecodeError as err:
            raise EvaluationError(f"{self.meta_path}: not valid JSON ({err})") from None
        videos = meta.get("videos") if isinstance(meta, dict) else None
        if not isinstance(videos, dict) or not videos:
            raise EvaluationError(f"{self.meta_path}: expected {{\"videos\": {{...}}}} with at least one video")
        return videos
