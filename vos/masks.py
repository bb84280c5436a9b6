"""Object masks: what a user's annotation means, label PNGs out, and the per-object view the model needs.

A label map is an (H, W) uint8 array of object ids (0 = background). Annotations come
from many tools, so one rule decides what a file or array means (:func:`as_annotation`):

* values {0, 255} only: a binary mask (DAVIS-2016, most tools' export): one object, id 1;
* otherwise ids 1..254 are objects and 255 is DAVIS's *void* label: neither object nor
  background; it is not tracked and not scored (:data:`VOID_ID`);
* more than ``max_objects`` ids means the file is not a label map (an anti-aliased or
  photographed mask); lossy files (JPEG, ...) are refused before they are read, because
  compression noise turns one object's edge into dozens of ids.

Masks are written as DAVIS palette PNGs through ``eval.files``, so the pipeline writes
exactly what the evaluator reads.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from eval.files import MaskFileError, decode_mask_file, read_label_png, write_label_png

VOID_ID = 255
# A video benchmark has at most a few dozen objects per video; a label map with more ids is
# almost always an image that is not one (antialiased edges, JPEG noise, a photo).
DEFAULT_MAX_OBJECTS = 32
# Image formats whose pixel values survive saving exactly (PIL format names).
LOSSLESS_FORMATS = ("PNG", "BMP", "TIFF", "GIF", "PPM")


def check_size(where: str | os.PathLike, shape: tuple[int, ...], expected_size: tuple[int, int] | None) -> None:
    """Fail when a mask does not cover its frame pixel for pixel."""
    if expected_size is not None and tuple(shape[:2]) != tuple(expected_size):
        raise MaskFileError(
            f"{where}: mask is {shape[0]}x{shape[1]} (HxW) but its frame is "
            f"{expected_size[0]}x{expected_size[1]}"
        )


def read_mask(path: str | os.PathLike, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a label PNG (indexed or grey) as (H, W) uint8 ids, values as stored.

    ``expected_size`` is the (H, W) of the frame the mask annotates; a mismatch is an
    error rather than a silent resize, because it usually means the wrong file.
    """
    labels = read_label_png(path)
    check_size(path, labels.shape, expected_size)
    return labels


def _lossless_labels(path: Path) -> np.ndarray:
    """The label values of a mask image: indexed or grey values, or a grey-looking colour image's grey.

    Lossy formats are refused before their pixels are read, and so are colour images (their
    pixel values are colours, not ids). Alpha is ignored.
    """

    def decode(image: Image.Image) -> np.ndarray:
        if image.format not in LOSSLESS_FORMATS:
            raise MaskFileError(
                f"{path}: is a {image.format or 'lossy'} image; masks must be lossless (PNG), because "
                "compression noise turns object edges into many ids")
        if image.mode in ("P", "L"):
            return np.array(image, dtype=np.uint8)
        if image.mode in ("PA", "LA"):  # ids or grey, plus alpha
            return np.array(image, dtype=np.uint8)[..., 0].copy()
        if image.mode == "1":
            return np.array(image.convert("L"), dtype=np.uint8)
        pixels = np.asarray(image)[..., :3] if image.mode in ("RGB", "RGBA") else None
        if pixels is None or (pixels != pixels[..., :1]).any():
            raise MaskFileError(f"{path}: mask is a {image.mode} image with colours; expected an indexed (palette) "
                                "PNG whose pixel values are object ids, or a black-and-white mask")
        return pixels[..., 0].copy()

    return decode_mask_file(path, decode)


def as_annotation(labels: np.ndarray, where: str | os.PathLike = "mask",
                  max_objects: int = DEFAULT_MAX_OBJECTS) -> np.ndarray:
    """A user's label map under the module's rule: binary -> id 1, 255 = void, a bounded id count.

    ``labels`` is (H, W) of integers or booleans (True = object 1). ``where`` names the
    source in error messages.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise MaskFileError(f"{where}: a mask must be 2-D (H, W) of object ids, got shape {labels.shape}")
    if labels.dtype == bool:
        return labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and (labels.min() < 0 or labels.max() > 255)):
        raise MaskFileError(f"{where}: object ids must be integers in 0..255 (255 = void), got {labels.dtype} values")
    labels = labels.astype(np.uint8, copy=False)
    values = set(np.unique(labels).tolist())
    if values == {0, VOID_ID} or values == {VOID_ID}:
        return (labels == VOID_ID).astype(np.uint8)
    ids = sorted(values - {0, VOID_ID})
    if len(ids) > max_objects:
        raise MaskFileError(
            f"{where}: {len(ids)} object ids ({', '.join(map(str, ids[:6]))}, ...) but at most {max_objects} "
            "are expected; this does not look like a label map (expected: 0 background, 1..K objects, 255 void, "
            "or a 0/255 binary mask). Raise max_objects if the video really has that many objects")
    return labels


def read_annotation(path: str | os.PathLike, expected_size: tuple[int, int] | None = None,
                    max_objects: int = DEFAULT_MAX_OBJECTS) -> np.ndarray:
    """Read a user's annotation file under the rule of :func:`as_annotation`."""
    path = Path(path)
    labels = _lossless_labels(path)
    check_size(path, labels.shape, expected_size)
    return as_annotation(labels, path, max_objects)


def object_ids(labels: np.ndarray) -> list[int]:
    """Sorted object ids present in a label map (background 0 and void 255 excluded)."""
    return [int(i) for i in np.unique(labels) if i not in (0, VOID_ID)]


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
