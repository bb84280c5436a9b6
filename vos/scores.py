"""Per-object probabilities of a track, saved compactly for ensembling and analysis (``save_scores=true``).

One ``<frame>.npz`` per written frame holds ``object_ids`` (N,) and ``probabilities``
(N, H, W) as uint8, round(255 * p): a step of 1/255 in probability, about 40x smaller than
float32 logits and as small again once compressed. Frames where an object was given hold
its mask (0 or 255). :func:`read_scores` gives them back as float32 in [0, 1].
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from eval.files import atomic_writer

QUANTISATION = 255


@dataclass
class FrameScores:
    """One frame's per-object probabilities: row i is object ``object_ids[i]``."""

    object_ids: list[int]
    probabilities: np.ndarray  # (N, H, W) float32 in [0, 1], steps of 1/255


def quantise(logits: np.ndarray) -> np.ndarray:
    """uint8 round(255 * sigmoid(logits)); +-inf (a given mask) become 255 and 0."""
    probabilities = torch.sigmoid(torch.from_numpy(np.asarray(logits, np.float32)))
    return torch.round(probabilities * QUANTISATION).to(torch.uint8).numpy()


def write_scores(path: str | os.PathLike, object_ids: list[int], logits: np.ndarray) -> None:
    """``path`` (.npz), written atomically."""
    with atomic_writer(Path(path), "wb") as fh:
        np.savez_compressed(fh, object_ids=np.asarray(object_ids, np.int32), probabilities=quantise(logits))


def read_scores(path: str | os.PathLike) -> FrameScores:
    """A frame's scores as :func:`write_scores` saved them, probabilities back in [0, 1]."""
    with np.load(path) as data:
        ids = [int(i) for i in data["object_ids"]]
        probabilities = data["probabilities"].astype(np.float32) / QUANTISATION
    return FrameScores(ids, probabilities)
