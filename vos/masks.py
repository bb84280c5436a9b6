"""Object masks: label PNGs in, label PNGs out, and the per-object view the model needs.

A label mask is an (H, W) uint8 array of object ids (0 = background), stored as a DAVIS
palette PNG through ``eval.files``, so the pipeline writes exactly what the evaluator
reads. The model works on one boolean mask per object; ``split_objects`` and
``merge_objects`` convert between the two views.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from eval.files import MaskFileError, decode_mask_file, read_label_png, write_label_png

# Pixel values a binary mask may use: 0/255 as image tools write them, or 0/1.
BINARY_VALUE_SETS = ({0, 255}, {0, 1})


def check_size(path: str | os.PathLike, shape: tuple[int, ...], expected_size: tuple[int, int] | None) -> None:
    """Fail when a mask does not cover its frame pixel for pixel."""
    if expected_size is not None and tuple(shape[:2]) != tuple(expected_size):
        raise MaskFileError(
            f"{path}: mask is {shape[0]}x{shape[1]} (HxW) but its frame is "
            f"{expected_size[0]}x{expected_size[1]}"
        )


def read_mask(path: str | os.PathLike, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a label PNG (indexed or grey) as (H, W) uint8 object ids.

    ``expected_size`` is the (H, W) of the frame the mask annotates; a mismatch is an
    error rather than a silent resize, because it usually means the wrong file.
    """
    labels = read_label_png(path)
    check_size(path, labels.shape, expected_size)
    return labels


def read_binary_mask(path: str | os.PathLike, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a black-and-white mask (0/255 or 0/1; grey, palette or grey-looking RGB; alpha ignored) as (H, W) bool.

    Any other value is an error: a grey level in between, or colours, mean the file is
    not a binary mask (perhaps a multi-object label mask, which ``read_mask`` reads).
    """
    path = Path(path)
    pixels = decode_mask_file(path, lambda image: np.asarray(image.convert("L") if image.mode == "1" else image))
    if pixels.ndim == 3:
        # Grey or colour channels, without alpha: 1 of LA/PA, 3 of RGB/RGBA.
        channels = pixels[..., :3] if pixels.shape[2] >= 3 else pixels[..., :1]
        if (channels != channels[..., :1]).any():
            raise MaskFileError(f"{path}: mask has colours; expected a black-and-white (0/255) mask")
        pixels = channels[..., 0]
    check_size(path, pixels.shape, expected_size)
    values = set(np.unique(pixels).tolist())
    if not any(values <= allowed for allowed in BINARY_VALUE_SETS):
        shown = sorted(values)[:8]
        raise MaskFileError(
            f"{path}: not a binary mask; pixel values {shown}{'...' if len(values) > 8 else ''} "
            "are not all 0/255 or 0/1 (use read_mask for label masks)"
        )
    return pixels > 0


def object_ids(labels: np.ndarray) -> list[int]:
    """Sorted non-zero ids present in a label mask."""
    return [int(i) for i in np.unique(labels) if i != 0]


def write_mask(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write (H, W) object ids as a DAVIS palette PNG, atomically."""
    write_label_png(path, labels)


def split_objects(labels: np.ndarray, ids: list[int] | None = None) -> np.ndarray:
    """One boolean mask per object id, stacked as (N, H, W); ``ids`` defaults to those present."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-D (H, W), got shape {labels.shape}")
    ids = object_ids(labels) if ids is None else list(ids)
    return labels[None] == np.asarray(ids, dtype=np.int64).reshape(-1, 1, 1)


def merge_objects(masks: np.ndarray, ids: list[int]) -> np.ndarray:
    """Label mask (H, W) uint8 from non-overlapping (N, H, W) boolean masks and their ids.

    Overlaps are refused rather than resolved by an arbitrary order: deciding which
    object owns a pixel needs scores, which only the caller has.
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3 or masks.shape[0] != len(ids):
        raise ValueError(f"expected {len(ids)} masks of shape (H, W), got array of shape {masks.shape}")
    if any(not 0 < i <= 255 for i in ids) or len(set(ids)) != len(ids):
        raise ValueError(f"object ids must be distinct and in 1..255, got {list(ids)}")
    overlap = int((masks.sum(axis=0) > 1).sum())
    if overlap:
        raise ValueError(f"object masks overlap on {overlap} pixels; resolve overlaps before merging")
    labels = np.zeros(masks.shape[1:], dtype=np.uint8)
    for mask, i in zip(masks, ids):
        labels[mask] = i
    return labels
