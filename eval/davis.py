"""The DAVIS evaluation protocol: which frames and objects are scored, and how they add up.

Follows ``davis2017-evaluation`` (commit ac7c43f), with its numbers to within float
rounding and its CSVs byte for byte, except where it misbehaves:

* bad input (missing or unreadable masks, wrong sizes, colour PNGs, a prediction id
  above the number of objects) raises :class:`EvaluationError` naming the sequence and
  the file, where the toolkit prints a line and calls ``sys.exit``;
* Decay stays correct from 256 scored frames on, where the toolkit's wraps (see :mod:`eval.metrics`);
* in the unsupervised task, per-object rows are keyed by the ground-truth object that a
  proposal was matched to (the toolkit lists them in proposal order under the names
  ``<seq>_1..n``); the global numbers are the same either way.

Semi-supervised: objects are the ids in the first annotated frame; the first and last
frames are not scored; void (255) pixels are ignored by neither metric (the toolkit passes
no void mask here); an object absent from the predictions scores as empty.
Unsupervised: every frame is scored with void pixels excluded, and at most 20 proposals
are matched one-to-one to the objects by maximal mean J&F (Hungarian method).
"""
from __future__ import annotations

import operator
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from eval.datasets import DavisLayout, EvaluationError
from eval.files import MaskFileError, read_label_png
from eval.metrics import (
    DEFAULT_BOUND_TH,
    boundary_tolerance,
    disk_kernel,
    frame_scores,
    statistics,
)

VOID_LABEL = 255
MAX_PROPOSALS = 20
OBJECT_METRICS = ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
GLOBAL_METRICS = ("J&F-Mean", *OBJECT_METRICS)


@dataclass
class SequenceScores:
    """Per-frame J and F of every object of one sequence: ``j[i, t]`` is object ``object_ids[i]``."""

    sequence: str
    num_frames: int
    frames: list[str]
    object_ids: list[int]
    j: np.ndarray
    f: np.ndarray


# ----------------------------------------------------------------------------- protocol

def _object_ids(first_annotation: np.ndarray) -> list[int]:
    """Objects are 1..max id of the first annotated frame, void excluded (the toolkit's rule)."""
    labels = first_annotation[first_annotation != VOID_LABEL]
    return list(range(1, int(labels.max(initial=0)) + 1))


def _davis_rule(object_ids: list[int]) -> str:
    n = len(object_ids)
    return f"the first annotated frame has only {n} object(s); ids must lie in 0..{n}"


def _unexpected_id(pred: np.ndarray, object_ids: list[int]) -> int | None:
    """The smallest id in ``pred`` that is neither background (0) nor one of ``object_ids``."""
    n = len(object_ids)
    if object_ids == list(range(1, n + 1)) and pred.min(initial=0) >= 0 and pred.max(initial=0) <= n:
        return None  # ids 1..n: two reductions suffice (the DAVIS case, on every frame)
    extra = np.setdiff1d(np.unique(pred), [0, *object_ids])
    return int(extra[0]) if extra.size else None


def _score_semi_supervised(
    frames: Iterable[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]], object_ids: list[int], id_rule: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-object, per-frame (J, F) from a stream of (where, gt, pred, void) frames.

    A prediction id outside ``object_ids`` is an error whose message ends with ``id_rule``.
    """
    j_rows, f_rows = [], []
    kernel = None
    for where, gt, pred, void in frames:
        bad = _unexpected_id(pred, object_ids)
        if bad is not None:
            raise EvaluationError(f"{where}: prediction has object id {bad} but {id_rule}")
        if kernel is None:
            kernel = disk_kernel(boundary_tolerance(gt.shape, DEFAULT_BOUND_TH))
        scores = [frame_scores(gt == k, pred == k, void, kernel) for k in object_ids]
        j_rows.append([s[0] for s in scores])
        f_rows.append([s[1] for s in scores])
    shape = (len(j_rows), len(object_ids))
    return np.array(j_rows, np.float64).reshape(shape).T, np.array(f_rows, np.float64).reshape(shape).T


def _score_unsupervised(
    where: str, gt: np.ndarray, pred: np.ndarray, object_ids: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-object, per-frame (J, F) of the proposals matched to the objects by maximal mean J&F."""
    n_proposals = int(pred.max(initial=0))
    if n_proposals > MAX_PROPOSALS:
        raise EvaluationError(
            f"{where}: prediction has proposal id {n_proposals}; at most {MAX_PROPOSALS} proposals are allowed"
        )
    void = gt == VOID_LABEL
    kernel = disk_kernel(boundary_tolerance(gt.shape[1:], DEFAULT_BOUND_TH))
    n_rows = max(n_proposals, len(object_ids))  # missing proposals are empty masks
    j = np.zeros((n_rows, len(object_ids), len(gt)))
    f = np.zeros_like(j)
    for t in range(len(gt)):
        objects = [gt[t] == k for k in object_ids]
        for p in range(n_rows):
            proposal = pred[t] == p + 1
            for g, obj in enumerate(objects):
                j[p, g, t], f[p, g, t] = frame_scores(obj, proposal, void[t], kernel)
    rows, cols = linear_sum_assignment(-(j.mean(axis=2) + f.mean(axis=2)) / 2)
    order = np.argsort(cols)
    return j[rows[order], cols[order]], f[rows[order], cols[order]]


def _given_object_ids(object_ids: Sequence[int]) -> list[int]:
    try:
        ids = sorted({operator.index(k) for k in object_ids})
    except TypeError:
        raise EvaluationError(f"object_ids must be integers, got {list(object_ids)!r}") from None
    if not ids:
        raise EvaluationError("object_ids is empty: there is no object to score")
    if ids[0] < 1 or ids[-1] >= VOID_LABEL:
        raise EvaluationError(f"object_ids must lie in 1..{VOID_LABEL - 1} (0 is background, "
                              f"{VOID_LABEL} void), got {ids}")
    return ids


def evaluate_sequence(
    gt_labels: np.ndarray,
    pred_labels: np.ndarray,
    *,
    void: np.ndarray | None = None,
    object_ids: Sequence[int] | None = None,
) -> dict[int, dict[str, float]]:
    """Semi-supervised scores of one in-memory sequence, per object id.

    ``gt_labels`` and ``pred_labels`` are (T, H, W) label arrays of all T frames; the
    first and last frames are not scored. ``void`` (T, H, W) optionally marks pixels
    that neither metric counts. Returns the seven numbers per object id.

    ``object_ids`` are the objects scored; a prediction id outside them is an error.
    Give them for a user's own video, whose ids need not be 1..n: by default the DAVIS
    rule applies (objects 1..max id of the first ground-truth frame), which scores an
    id missing from that range, e.g. 2 of {1, 3}, as a phantom object that is always
    perfect (empty in both).
    """
    gt_labels, pred_labels = np.asarray(gt_labels), np.asarray(pred_labels)
    if gt_labels.ndim != 3 or gt_labels.shape != pred_labels.shape:
        raise EvaluationError(
            f"gt_labels {gt_labels.shape} and pred_labels {pred_labels.shape} must be equal (T, H, W) shapes"
        )
    if len(gt_labels) < 3:
        raise EvaluationError(f"sequence has {len(gt_labels)} frames; at least 3 are needed to score one")
    if void is not None:
        void = np.asarray(void, dtype=bool)
        if void.shape != gt_labels.shape:
            raise EvaluationError(f"void {void.shape} must have the shape of gt_labels {gt_labels.shape}")
    if object_ids is None:
        object_ids = _object_ids(gt_labels[0])
        id_rule = _davis_rule(object_ids)
    else:
        object_ids = _given_object_ids(object_ids)
        id_rule = f"the scored objects are {', '.join(map(str, object_ids))} (and 0, background)"
    frames = (
        (f"frame {t}", gt_labels[t], pred_labels[t], None if void is None else void[t])
        for t in range(1, len(gt_labels) - 1)
    )
    j, f = _score_semi_supervised(frames, object_ids, id_rule)
    return {k: object_summary(j[i], f[i]) for i, k in enumerate(object_ids)}


def object_summary(j: np.ndarray, f: np.ndarray) -> dict[str, float]:
    """Mean, Recall and Decay of J and F over one object's scored frames, and their J&F-Mean."""
    jm, jr, jd = statistics(j)
    fm, fr, fd = statistics(f)
    return {"J-Mean": jm, "J-Recall": jr, "J-Decay": jd, "F-Mean": fm, "F-Recall": fr, "F-Decay": fd,
            "J&F-Mean": (jm + fm) / 2}


# ----------------------------------------------------------------------------- reading

def _frame_names(layout: DavisLayout, annotations: Path, sequence: str) -> list[str]:
    """Frame names of a sequence: its JPEG frames, each of which must have an annotation."""
    frames = layout.frame_names(sequence)
    if not frames:
        raise EvaluationError(f"sequence {sequence}: no frames (*.jpg) in {layout.frames_dir(sequence)}")
    annotated = {p.stem for p in annotations.glob("*.png") if p.is_file()}
    missing = sorted(set(frames) - annotated)
    if missing:
        raise EvaluationError(
            f"sequence {sequence}: {len(missing)} frame(s) have no annotation in {annotations}, e.g. {missing[0]}.png"
        )
    return frames


def read_scored_mask(path: Path, sequence: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A label PNG of ``sequence``, of ``shape`` when given; problems are EvaluationErrors naming the file."""
    try:
        labels = read_label_png(path)
    except MaskFileError as err:
        raise EvaluationError(f"sequence {sequence}: {err}") from None
    if shape is not None and labels.shape != shape:
        raise EvaluationError(
            f"sequence {sequence}: {path}: mask is {labels.shape[1]}x{labels.shape[0]} (WxH) but the "
            f"annotation is {shape[1]}x{shape[0]}"
        )
    return labels


def _check_results_present(results_dir: Path, sequence: str, frames: list[str]) -> None:
    folder = results_dir / sequence
    if not folder.is_dir():
        raise EvaluationError(f"sequence {sequence}: results folder {folder} not found")
    missing = [name for name in frames if not (folder / f"{name}.png").is_file()]
    if missing:
        raise EvaluationError(
            f"sequence {sequence}: {len(missing)} of {len(frames)} scored frame(s) missing, "
            f"first {folder / (missing[0] + '.png')}"
        )


@dataclass(frozen=True)
class _Job:
    layout: DavisLayout
    results_dir: Path
    sequence: str
    task: str


def _evaluate_job(job: _Job) -> SequenceScores:
    """Read one sequence's annotations and results and score it (runs in a worker thread)."""
    seq = job.sequence
    annotations = job.layout.annotations_dir(seq, job.task)
    frames = _frame_names(job.layout, annotations, seq)
    first = read_scored_mask(annotations / f"{frames[0]}.png", seq)
    object_ids = _object_ids(first)
    scored = frames[1:-1] if job.task == "semi-supervised" else frames
    if not scored:
        raise EvaluationError(f"sequence {seq}: {len(frames)} frame(s); at least 3 are needed to score one")
    _check_results_present(job.results_dir, seq, scored)

    def pair(name: str) -> tuple[np.ndarray, np.ndarray, Path]:
        gt = first if name == frames[0] else read_scored_mask(annotations / f"{name}.png", seq, first.shape)
        pred_path = job.results_dir / seq / f"{name}.png"
        return gt, read_scored_mask(pred_path, seq, first.shape), pred_path

    if job.task == "semi-supervised":
        def stream() -> Iterator[tuple[str, np.ndarray, np.ndarray, None]]:
            for name in scored:
                gt, pred, path = pair(name)
                yield f"sequence {seq}: {path}", gt, pred, None

        j, f = _score_semi_supervised(stream(), object_ids, _davis_rule(object_ids))
    else:
        gts, preds, _ = zip(*(pair(name) for name in scored))
        j, f = _score_unsupervised(f"sequence {seq}: {job.results_dir / seq}", np.stack(gts), np.stack(preds),
                                   object_ids)
    return SequenceScores(seq, len(frames), scored, object_ids, j, f)


# ----------------------------------------------------------------------------- running

def default_workers(n_jobs: int) -> int:
    """One worker per available core, never more than there are sequences."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, n_jobs))


def _run(jobs: list[_Job], workers: int) -> list[SequenceScores]:
    if workers <= 1 or len(jobs) <= 1:
        return [_evaluate_job(job) for job in jobs]
    # Threads, not processes: PNG decoding, OpenCV and the large numpy operations release
    # the GIL, and a forked worker deadlocks when the caller already ran torch or OpenCV
    # thread pools (the pipeline evaluates in the process that ran the model).
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(_evaluate_job, jobs))


def summarize(scores: list[SequenceScores]) -> dict:
    """Per-object, per-sequence and global numbers, aggregated as the toolkit does."""
    per_object: dict[str, dict] = {}
    per_sequence: dict[str, dict] = {}
    for seq in scores:
        rows = []
        for i, k in enumerate(seq.object_ids):
            row = object_summary(seq.j[i], seq.f[i])
            rows.append(row)
            per_object[f"{seq.sequence}_{k}"] = {
                "sequence": seq.sequence, "object_id": k, **row, "frames_evaluated": list(seq.frames),
                "J_per_frame": seq.j[i].tolist(), "F_per_frame": seq.f[i].tolist(),
            }
        per_sequence[seq.sequence] = {
            **mean_over_objects(rows), "objects": [f"{seq.sequence}_{k}" for k in seq.object_ids],
            "num_frames_total": seq.num_frames, "num_frames_evaluated": len(seq.frames),
        }
    return {"global": mean_over_objects(list(per_object.values())), "per_sequence": per_sequence, "per_object": per_object}


def mean_over_objects(rows: list[dict]) -> dict[str, float]:
    """Mean of every metric over objects; J&F-Mean from the two means (NaN without objects)."""
    means = {}
    for name in OBJECT_METRICS:
        means[name] = float(np.mean([r[name] for r in rows])) if rows else float("nan")
    return {"J&F-Mean": (means["J-Mean"] + means["F-Mean"]) / 2, **means}


def _layout(davis_root: str | os.PathLike | DavisLayout, **options: str | None) -> DavisLayout:
    """``davis_root`` as a layout; options left None keep the layout's defaults.

    Options beside a ready :class:`DavisLayout` would contradict it, so that is a bug.
    """
    given = {name: str(value) for name, value in options.items() if value is not None}
    if isinstance(davis_root, DavisLayout):
        if given:
            raise TypeError(f"evaluate_davis: give {', '.join(given)} inside the DavisLayout, not beside it")
        return davis_root
    return DavisLayout(Path(davis_root), **given)


def evaluate_davis(
    davis_root: str | os.PathLike | DavisLayout,
    results_dir: str | os.PathLike,
    *,
    subset: str | None = None,
    year: str | None = None,
    resolution: str | None = None,
    task: str = "semi-supervised",
    sequences: list[str] | None = None,
    workers: int | None = None,
) -> dict:
    """Score a results folder (``<seq>/<frame>.png``) against a DAVIS root.

    ``davis_root`` is a DAVIS folder, with ``subset``, ``year`` and ``resolution``
    (default val, 2017, 480p: the annotations the masks are scored against), or a
    :class:`~eval.datasets.DavisLayout` that already says them.

    Returns ``{"global", "per_sequence", "per_object", "protocol"}``; ``global`` and
    ``per_object`` hold the toolkit's numbers at full precision, ``per_object`` also the
    per-frame J and F. ``workers`` threads share the sequences (default: one per
    core); the numbers do not depend on it.
    """
    layout = _layout(davis_root, split=subset, year=year, resolution=resolution)
    results_dir = Path(results_dir)
    names = layout.check(task, sequences)
    if not results_dir.is_dir():
        raise EvaluationError(f"results folder {results_dir} not found")
    if not any(p.is_dir() for p in results_dir.iterdir()):
        raise EvaluationError(f"results folder {results_dir} is empty: expected one folder of PNGs per sequence")
    jobs = [_Job(layout, results_dir, name, task) for name in names]
    workers = default_workers(len(jobs)) if workers is None else workers
    results = summarize(_run(jobs, workers))
    results["protocol"] = {
        "task": task, "set": layout.split, "year": layout.year, "resolution": layout.resolution,
        "bound_th": DEFAULT_BOUND_TH, "davis_root": str(layout.root), "results_dir": str(results_dir),
        "scored_frames": "all but the first and last" if task == "semi-supervised" else "all",
    }
    return results
