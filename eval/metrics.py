"""DAVIS per-frame metrics (region similarity J, contour accuracy F) and their statistics.

Every value follows ``davis2017-evaluation`` (``davis2017/metrics.py`` and
``davis2017/utils.py:db_statistics``) operation for operation, so per-frame numbers are
the same floats the official toolkit produces. What differs is only how much work is done:

* A frame is cropped to the bounding box of its two masks, grown by one pixel on every
  side, before anything else. Boundary pixels can only lie there, and the dilation is
  needed only at boundary pixels, so the crop gives exactly the full-frame result.
* The disk structuring element is built with numpy (the same ``x^2 + y^2 <= r^2`` set
  as ``skimage.morphology.disk``) and cached, so scikit-image is never imported.

Decay and long videos: the official ``db_statistics`` casts its four-quantile bin
edges to ``uint8``. From 256 scored frames on they wrap around (with numpy 2 already
at exactly 256, where the last slice end ``255 + 1`` overflows to 0; with numpy 1 from
257), and its Decay becomes wrong or NaN. Here the edges are plain integers, so Decay is
correct for any length and identical to the official value up to 255 scored frames.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import cv2
import numpy as np

# Fraction of the image diagonal that a boundary pixel may be off by (DAVIS default).
DEFAULT_BOUND_TH = 0.008
# A frame scores as "recalled" when its value is strictly above this.
RECALL_THRESHOLD = 0.5
DECAY_BINS = 4


def boundary_tolerance(shape: tuple[int, int], bound_th: float = DEFAULT_BOUND_TH) -> float:
    """Boundary tolerance in pixels: ``bound_th`` itself if >= 1, else ceil(bound_th x diagonal)."""
    if bound_th >= 1:
        return float(bound_th)
    return float(np.ceil(bound_th * np.linalg.norm(shape)))


@functools.lru_cache(maxsize=8)
def disk_kernel(radius: float) -> np.ndarray:
    """Disk structuring element as uint8, the same pixel set as ``skimage.morphology.disk``."""
    offsets = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(offsets, offsets)
    kernel = (x**2 + y**2 <= radius**2).astype(np.uint8)
    kernel.flags.writeable = False
    return kernel


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary of a binary (H, W) mask, offset half a pixel towards the origin.

    A pixel is on the boundary when it differs from its right, lower or lower-right
    neighbour; on the last row only the right neighbour counts, on the last column only
    the lower one, and the bottom-right corner never counts (the official ``_seg2bmap``).
    """
    mask = np.asarray(mask, dtype=bool)
    bmap = np.zeros_like(mask)
    inner = mask[:-1, :-1]
    bmap[:-1, :-1] = (inner ^ mask[:-1, 1:]) | (inner ^ mask[1:, :-1]) | (inner ^ mask[1:, 1:])
    bmap[-1, :-1] = mask[-1, :-1] ^ mask[-1, 1:]
    bmap[:-1, -1] = mask[:-1, -1] ^ mask[1:, -1]
    return bmap


def _window(gt: np.ndarray, pred: np.ndarray) -> tuple[slice, slice] | None:
    """Bounding box of both masks grown by one pixel, clipped to the frame; None if both are empty.

    One pixel up/left because a boundary sits half a pixel towards the origin; one pixel
    down/right so that the crop's own last row/column is background, never mistaken for
    the image edge by ``boundary_map``.
    """
    rows = gt.any(axis=1) | pred.any(axis=1)
    if not rows.any():
        return None
    cols = gt.any(axis=0) | pred.any(axis=0)
    row_ids, col_ids = np.flatnonzero(rows), np.flatnonzero(cols)
    height, width = gt.shape
    return (
        slice(max(row_ids[0] - 1, 0), min(row_ids[-1] + 2, height)),
        slice(max(col_ids[0] - 1, 0), min(col_ids[-1] + 2, width)),
    )


def _cropped(
    gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """(gt, pred, keep) inside the masks' window, keep = not void; None if both masks are empty."""
    window = _window(gt, pred)
    if window is None:
        return None
    return gt[window], pred[window], None if void is None else ~void[window]


def _jaccard_in(gt: np.ndarray, pred: np.ndarray, keep: np.ndarray | None) -> float:
    inter = gt & pred
    union = gt | pred
    if keep is not None:
        inter &= keep
        union &= keep
    n_union = np.count_nonzero(union)
    return 1.0 if n_union == 0 else np.count_nonzero(inter) / n_union


def _f_in(gt: np.ndarray, pred: np.ndarray, keep: np.ndarray | None, kernel: np.ndarray) -> float:
    if keep is not None:
        gt, pred = gt & keep, pred & keep
    gt_boundary = boundary_map(gt)
    pred_boundary = boundary_map(pred)
    n_gt = np.count_nonzero(gt_boundary)
    n_pred = np.count_nonzero(pred_boundary)
    # The toolkit's conventions for empty boundaries (a full mask has an empty one, too).
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    pred_dilated = cv2.dilate(pred_boundary.view(np.uint8), kernel).view(bool)
    gt_dilated = cv2.dilate(gt_boundary.view(np.uint8), kernel).view(bool)
    precision = np.count_nonzero(pred_boundary & gt_dilated) / float(n_pred)
    recall = np.count_nonzero(gt_boundary & pred_dilated) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def frame_scores(
    gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None, kernel: np.ndarray
) -> tuple[float, float]:
    """(J, F) of one (H, W) boolean frame pair; ``kernel`` is the dilation disk for F."""
    cropped = _cropped(gt, pred, void)
    if cropped is None:
        return 1.0, 1.0
    return _jaccard_in(*cropped), _f_in(*cropped, kernel)


def _as_frames(gt, pred, void) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    gt, pred = np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape or gt.ndim not in (2, 3):
        raise ValueError(f"gt {gt.shape} and pred {pred.shape} must be equal (H, W) or (T, H, W) shapes")
    if void is not None:
        void = np.asarray(void, dtype=bool)
        if void.shape != gt.shape:
            raise ValueError(f"void {void.shape} must have the shape of gt {gt.shape}")
    return gt, pred, void


def _per_frame(score, gt, pred, void) -> np.ndarray:
    gt, pred, void = _as_frames(gt, pred, void)
    if gt.ndim == 2:
        return np.asarray(score(gt, pred, void), dtype=np.float64)
    voids = [None] * len(gt) if void is None else void
    return np.array([score(g, p, v) for g, p, v in zip(gt, pred, voids)], dtype=np.float64)


def jaccard(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> np.ndarray:
    """Region similarity per frame: |gt & pred| / |gt | pred| outside void; 1 when the union is empty.

    Takes (H, W) or (T, H, W) binary arrays; returns a 0-d or (T,) float64 array.
    """
    def score(g, p, v):
        cropped = _cropped(g, p, v)
        return 1.0 if cropped is None else _jaccard_in(*cropped)

    return _per_frame(score, gt, pred, void)


def f_measure(
    gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None, bound_th: float = DEFAULT_BOUND_TH
) -> np.ndarray:
    """Contour accuracy per frame: boundary F-score with a disk tolerance (official approximation).

    Takes (H, W) or (T, H, W) binary arrays; returns a 0-d or (T,) float64 array.
    """
    kernel = disk_kernel(boundary_tolerance(np.shape(gt)[-2:], bound_th))
    return _per_frame(lambda g, p, v: frame_scores(g, p, v, kernel)[1], gt, pred, void)


def decay_bin_edges(n_frames: int) -> np.ndarray:
    """Edges of the four temporal quantiles as the toolkit places them, as int64 (never wraps)."""
    edges = np.round(np.linspace(1, n_frames, DECAY_BINS + 1) + 1e-10) - 1
    return edges.astype(np.int64)


def statistics(values: np.ndarray) -> tuple[float, float, float]:
    """(Mean, Recall, Decay) of per-frame values, ignoring NaNs as the toolkit does.

    Recall is the fraction of frames above 0.5; Decay is the mean of the first quarter
    of frames minus the mean of the last quarter (NaN when there are no frames).
    """
    values = np.asarray(values, dtype=np.float64)
    edges = decay_bin_edges(len(values))
    first = values[edges[0]:edges[1] + 1]
    last = values[edges[DECAY_BINS - 1]:edges[DECAY_BINS] + 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = np.nanmean(values)
        recall = np.nanmean(values > RECALL_THRESHOLD)
        decay = np.nanmean(first) - np.nanmean(last)
    return float(mean), float(recall), float(decay)


@dataclass
class FrameScores:
    """Per-frame region similarity J and boundary accuracy F of one object."""

    jaccard: np.ndarray  # (T,)
    f_measure: np.ndarray  # (T,)


def per_frame_scores(gt_labels: np.ndarray, pred_labels: np.ndarray,
                     void: np.ndarray | None = None) -> dict[int, FrameScores]:
    """J and F of every ground-truth object (ids other than 0 and void 255) in every frame of (T, H, W) stacks.

    Every frame is scored (the DAVIS protocol's means leave out the first and last),
    so the curves show the per-frame values behind the reported J and F means.
    """
    gt_labels, pred_labels = np.asarray(gt_labels), np.asarray(pred_labels)
    if gt_labels.ndim != 3 or gt_labels.shape != pred_labels.shape:
        raise ValueError(f"ground truth {gt_labels.shape} and predictions {pred_labels.shape} "
                         "must be (T, H, W) stacks of the same shape")
    scores = {}
    for object_id in [int(i) for i in np.unique(gt_labels) if i not in (0, 255)]:
        gt, pred = gt_labels == object_id, pred_labels == object_id
        scores[object_id] = FrameScores(np.asarray(jaccard(gt, pred, void), float),
                                        np.asarray(f_measure(gt, pred, void), float))
    return scores
