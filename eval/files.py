"""Label PNGs in DAVIS format and atomic file writes.

This is the lowest layer of the project: the evaluator reads label PNGs with it and
the pipeline (``vos``) writes them with it, so both agree on one format. A label PNG
is an 8-bit image whose pixel values are object ids (0 = background); DAVIS stores
them as palette ("P") images with the PASCAL-VOC colour map.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError


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


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """Read a label PNG into an (H, W) uint8 array of object ids.

    Palette and 8-bit grey images are accepted (their values are the ids, as the
    official DAVIS toolkit reads them); colour images are rejected because their
    pixel values are colours, not ids.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode not in LABEL_MODES:
                raise MaskFileError(
                    f"{path}: mask is a {mode} image; expected an indexed (palette) PNG "
                    "whose pixel values are object ids"
                )
            return np.array(image, dtype=np.uint8)
    except FileNotFoundError:
        raise MaskFileError(f"{path}: mask file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise MaskFileError(f"{path}: cannot read mask ({err})") from None


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success.

    A crash or an exception midway leaves ``path`` as it was (absent or the old
    version), never half-written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
        # mkstemp creates owner-only files; give the result the permissions of a normal open().
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
