"""One video in, a results folder out: masks, an overlay video, a summary, and J&F when there is ground truth.

    <output>/masks/<frame>.png     DAVIS palette PNGs (see vos.tracker.Track.save)
    <output>/scores/<frame>.npz    per-object probabilities, with save_scores (see vos.scores)
    <output>/overlay.mp4           object colours and contours over the frames
    <output>/summary.json          frames, objects, time, and the scores (written last)
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval import evaluate_sequence
from eval.files import MaskFileError, read_label_png
from .frames import FrameSource
from .masks import VOID_ID, check_size, read_mask
from .outputs import write_json
from .tracker import Track

SUMMARY_FILE = "summary.json"
DEFAULT_FPS = 24.0


@dataclass
class VideoSummary:
    """What :func:`segment_video` produced."""

    mask_dir: Path
    names: list[str]
    object_ids: list[int]
    overlay_path: Path | None
    metrics: dict[int, dict[str, float]] | None


def segment_video(track: Track, output_dir: str | os.PathLike, *, overlay: bool = True,
                  ground_truth: str | os.PathLike | None = None, overwrite: bool = False,
                  save_scores: bool = False) -> VideoSummary:
    """Save ``track`` into ``output_dir/masks`` (a finished track is not recomputed), then the rest.

    ``ground_truth`` is a folder of label PNGs named like the frames; the summary then holds
    J&F of exactly the tracked objects (DAVIS's scoring of each, first and last frame not scored).
    """
    started = time.perf_counter()
    output_dir = Path(output_dir)
    if ground_truth is not None:
        check_ground_truth(Path(ground_truth), track)
    saved = track.save(output_dir / "masks", overwrite=overwrite,
                       scores=output_dir / "scores" if save_scores else None)
    frames = track.frames
    overlay_path = None
    if overlay and isinstance(frames, FrameSource):
        fps = (frames.fps or DEFAULT_FPS) / max(1, getattr(frames, "stride", 1))
        overlay_path = write_overlay(output_dir / "overlay.mp4", frames, saved.directory, saved.names, fps)
    metrics = None
    if ground_truth is not None:
        metrics = score_against(Path(ground_truth), saved.directory, saved.names, saved.object_ids)
    summary = VideoSummary(saved.directory, saved.names, saved.object_ids, overlay_path, metrics)
    write_json(output_dir / SUMMARY_FILE, summary_record(summary, frames, time.perf_counter() - started))
    return summary


def check_ground_truth(gt_dir: Path, track: Track) -> None:
    """Fail before any work when the ground truth cannot score the track (folder or its first PNG missing)."""
    if not gt_dir.is_dir():
        raise MaskFileError(f"{gt_dir}: ground-truth folder not found")
    names = getattr(track.frames, "names", None) or ["00000"]
    read_mask(gt_dir / f"{names[0]}.png", expected_size=track.frames.size)


def write_overlay(path: Path, frames: FrameSource, mask_dir: Path, names: list[str], fps: float) -> Path:
    """Overlay video from the written masks, streaming (frames are decoded a second time)."""
    from .visualize import write_overlay_video

    labels = (read_mask(mask_dir / f"{name}.png") for name in names)
    return write_overlay_video(path, iter(frames), labels, fps=fps)


def ground_truth_stack(gt_dir: Path, names: list[str], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth label maps of ``names`` and their void pixels, under :mod:`vos.masks`'s rule.

    A sequence whose first frame is a 0/255 binary mask has one object (255 -> 1);
    otherwise 255 is void on every frame.
    """
    gt = np.stack([read_label_png(gt_dir / f"{name}.png") for name in names])
    check_size(gt_dir / f"{names[0]}.png", gt.shape[1:], size)
    first_values = set(np.unique(gt[0]).tolist())
    if first_values <= {0, VOID_ID} and VOID_ID in first_values:
        return (gt == VOID_ID).astype(np.uint8), np.zeros(gt.shape, bool)
    return np.where(gt == VOID_ID, 0, gt).astype(np.uint8), gt == VOID_ID


def score_against(gt_dir: Path, mask_dir: Path, names: list[str], object_ids: list[int]) -> dict[int, dict[str, float]]:
    """Per-object J&F of the written masks, for exactly the tracked objects."""
    pred = np.stack([read_mask(mask_dir / f"{name}.png") for name in names])
    gt, void = ground_truth_stack(gt_dir, names, pred.shape[1:])
    return evaluate_sequence(gt, pred, void=void if void.any() else None, object_ids=object_ids)


def mean_jf(metrics: dict[int, dict[str, float]]) -> float:
    return float(np.mean([m["J&F-Mean"] for m in metrics.values()]))


def summary_record(summary: VideoSummary, frames: Any, seconds: float) -> dict[str, Any]:
    record = {
        "input": str(frames.path) if getattr(frames, "path", None) else None,
        "frames": len(summary.names),
        "size": list(frames.size),
        "object_ids": summary.object_ids,
        "masks": str(summary.mask_dir),
        "overlay": str(summary.overlay_path) if summary.overlay_path else None,
        "seconds": round(seconds, 3),
    }
    if summary.metrics is not None:
        record["J&F-Mean"] = mean_jf(summary.metrics)
        record["per_object"] = {str(k): v for k, v in summary.metrics.items()}
    return record
