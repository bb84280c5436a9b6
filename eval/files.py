"""Label PNGs in DAVIS format and atomic file writes.

This is the lowest layer of the project: the evaluator reads label PNGs with it and
the pipeline (``vos``) writes them with it, so both agree on one format. A label PNG
is an 8-bit image whose pixel values are object ids (0 = background); DAVIS stores
them as palette ("P") images with the PASCAL-VOC colour map.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import IO, Callable, Iterator, TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

T = TypeVar("T")


class MaskFileError(ValueError):
    """A mask file that is missing, unreadable or not a label image; the message names it."""


def davis_palette() -> np.ndarray:
    """The 256-colour PASCAL-VOC / DAVIS palette as a (256, 3) uint8 array."""
    ids = np.arange(256)
    palette = np.zeros((256, 3), dtype=np.uint8)
    for bit in range(8):
        for channel in range(3):
            palette[:, channel] |= (((ids >> (3 * bit + channel)) & 1) << (7 - bit)).astype(np.uint8)
    return palette


# Modes whose pixel values are the labels themselves.
LABEL_MODES = ("P", "L")
# What PIL raises on a missing, truncated or non-image file.
IMAGE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError)


def decode_mask_file(path: str | os.PathLike, decode: Callable[[Image.Image], T]) -> T:
    """``decode`` applied to the loaded image at ``path``.

    A missing or unreadable file is a :class:`MaskFileError` naming it; ``decode``
    may raise its own ``MaskFileError`` for an image it does not accept.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return decode(image)
    except FileNotFoundError:
        raise MaskFileError(f"{path}: mask file not found") from None
    except IMAGE_ERRORS as err:
        raise MaskFileError(f"{path}: cannot read mask ({err})") from None


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """Read a label PNG into an (H, W) uint8 array of object ids.

    Palette and 8-bit grey images are accepted (their values are the ids, as the
    official DAVIS toolkit reads them); colour images are rejected because their
    pixel values are colours, not ids.
    """
    path = Path(path)

    def labels(image: Image.Image) -> np.ndarray:
        if image.mode not in LABEL_MODES:
            raise MaskFileError(
                f"{path}: mask is a {image.mode} image; expected an indexed (palette) PNG "
                "whose pixel values are object ids"
            )
        return np.array(image, dtype=np.uint8)

    return decode_mask_file(path, labels)


def write_label_png(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write an (H, W) array of object ids as a DAVIS palette PNG, atomically."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{path}: labels must be 2-D (H, W), got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"{path}: object ids must lie in 0..255")
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(davis_palette().tobytes())
    with atomic_writer(path, "wb") as fh:
        image.save(fh, format="PNG")


def _create_beside(path: Path) -> tuple[int, Path]:
    """Create a new, uniquely named temporary file beside ``path``; returns (fd, its path).

    Mode 0o666 lets the kernel apply the umask, so the file gets the permissions of a
    normal ``open()`` without reading the umask (``os.umask`` changes it process-wide,
    which races with other threads creating files).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success.

    A crash or an exception midway leaves ``path`` as it was (absent or the old
    version), never half-written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_beside(path)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
