"""J&F of each object from its first annotation on: the scoring of benchmarks whose objects start late.

For a sequence whose Annotations hold ground truth (LVOS, a user's folder), each object is
scored on every frame after the one where it was given, up to the sequence's last frame
excluded, where that frame has a ground-truth PNG. Frames before an object's first
annotation are not scored for it (the YouTube-VOS rule); a frame where the object is absent
from both ground truth and prediction scores 1 (DAVIS's convention for empty masks), so an
object that leaves and comes back is scored on the frames in between too. Per object the
numbers are DAVIS's (J/F Mean, Recall, Decay over its scored frames); sequences and the
global row are means over objects, as in :func:`eval.davis.summarize` (an object with no
frame left to score, given on the sequence's last frames, is left out). An object starting
on frame 0 of a fully annotated sequence is therefore scored exactly as DAVIS scores it.
How this differs from the LVOS toolkit's own scoring is in the README (Datasets).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from eval.datasets import EvaluationError, FolderLayout
from eval.davis import DEFAULT_BOUND_TH, mean_over_objects, read_scored_mask, object_summary
from eval.metrics import boundary_tolerance, disk_kernel, frame_scores


def score_sequence(layout: FolderLayout, results_dir: Path, sequence: str) -> dict[int, dict]:
    """Per object: its scored frames and their J and F."""
    names = layout.frame_names(sequence)
    position = {name: i for i, name in enumerate(names)}
    starts = layout.object_starts(sequence)
    annotations = layout.annotations_dir(sequence)
    rows = {k: {"frames": [], "j": [], "f": []} for k in sorted(starts)}
    kernel = None
    for name in names[1:-1]:
        gt_path = annotations / f"{name}.png"
        scored = [k for k in rows if position.get(starts[k], len(names)) < position[name]]
        if not scored or not gt_path.is_file():
            continue
        gt = read_scored_mask(gt_path, sequence)
        pred_path = results_dir / sequence / f"{name}.png"
        if not pred_path.is_file():
            raise EvaluationError(f"sequence {sequence}: {pred_path} not found (the frame is scored)")
        pred = read_scored_mask(pred_path, sequence, gt.shape)
        if kernel is None:
            kernel = disk_kernel(boundary_tolerance(gt.shape, DEFAULT_BOUND_TH))
        for k in scored:
            j, f = frame_scores(gt == k, pred == k, None, kernel)
            rows[k]["frames"].append(name)
            rows[k]["j"].append(j)
            rows[k]["f"].append(f)
    return rows


def evaluate_objects(layout: FolderLayout, results_dir: str | Path, sequences: list[str] | None = None) -> dict:
    """``{"global", "per_sequence", "per_object", "protocol"}`` in :func:`eval.evaluate_davis`'s shape."""
    results_dir = Path(results_dir)
    per_object: dict[str, dict] = {}
    per_sequence: dict[str, dict] = {}
    for sequence in layout.check(sequences=sequences):
        rows, ids = [], []
        for k, scored in score_sequence(layout, results_dir, sequence).items():
            if not scored["frames"]:  # given on the last annotated frames: nothing left to score it on
                continue
            ids.append(k)
            row = object_summary(np.array(scored["j"], float), np.array(scored["f"], float))
            rows.append(row)
            per_object[f"{sequence}_{k}"] = {"sequence": sequence, "object_id": k, **row,
                                             "frames_evaluated": scored["frames"], "J_per_frame": scored["j"],
                                             "F_per_frame": scored["f"]}
        per_sequence[sequence] = {**mean_over_objects(rows), "objects": [f"{sequence}_{k}" for k in ids]}
    return {"global": mean_over_objects(list(per_object.values())), "per_sequence": per_sequence, "per_object": per_object,
            "protocol": {"task": "semi-supervised", "set": layout.split or "all", "bound_th": DEFAULT_BOUND_TH,
                         "root": str(layout.root), "results_dir": str(results_dir),
                         "scored_frames": "per object: every annotated frame after its first annotation, "
                                          "the sequence's last frame excluded"}}
