"""Image and mask pre/post-processing exactly as the official SEEM demo does it.

* Frames: PIL bicubic resize so that the shorter side is ``short_side`` (512 in
  the demo) and the longer side is ``int(short_side * long / short)``
  (truncated), as ``torchvision.transforms.Resize(512, BICUBIC)`` does on a PIL
  image; a frame whose shorter side already has that length is left untouched.
* SAM-ViT models have a fixed input size S (``IMAGE_SIZE``, 1024 in the
  released ones) and also cap the longer side at S, as the official v1
  evaluation transform does for them (``Resize(MIN_SIZE_TEST, BICUBIC,
  max_size=MAX_SIZE_TEST)``, 1000 and 1024 in their configs; ``short_side=1000``
  reproduces it): a longer side above S becomes S and the shorter side shrinks
  in proportion (truncated, torchvision's formula). ``short_side`` must be
  smaller than S, as torchvision requires. Their size divisibility is S, so
  every frame is padded to exactly S x S and costs the same whatever its size:
  a 480x854 video at ``short_side`` 512 is 512x910 of content in 1024x1024,
  2.2 times the pixels of the 512x928 FocalNet input, 56% of it padding.
* Normalisation ``(x - mean) / std`` on the 0..255 scale, then zero padding at
  the bottom and right to a multiple of the size divisibility (32 for FocalNet
  models, S for SAM-ViT ones).
* Masks and sketches: bilinear resize of the **uint8** sketch (0/255 for a
  mask; strokes may have soft edges) in uint8 arithmetic, as the demo does,
  then ``> 0``; padded with False.
* Mask logits: bilinear upsampling to the padded size, crop to the resized
  frame; we then resize bilinearly to the original frame size (the demo stops at
  the resized frame). The v1 interactive call does the same bicubically.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor


@dataclass(frozen=True)
class FrameGeometry:
    """Sizes of one frame through the pipeline: original, resized, padded (all (H, W))."""

    original: tuple[int, int]
    resized: tuple[int, int]
    padded: tuple[int, int]


def check_short_side(short_side: int, max_side: int | None) -> None:
    """Refuse a ``short_side`` the longer-side cap cannot honour (as torchvision's ``max_size`` does)."""
    if max_side is not None and short_side >= max_side:
        raise ValueError(f"short_side {short_side} must be smaller than {max_side}, the fixed input size "
                         f"of this model (its frames are resized so that the longer side is at most that)")


def resized_size(height: int, width: int, short_side: int, max_side: int | None = None) -> tuple[int, int]:
    """(H, W) after the official resize: shorter side -> ``short_side``, longer side truncated;
    with ``max_side``, a longer side above it becomes ``max_side`` (torchvision's ``max_size``)."""
    check_short_side(short_side, max_side)
    short, long = sorted((height, width))
    new_short, new_long = short_side, int(short_side * long / short)
    if max_side is not None and new_long > max_side:
        new_short, new_long = int(max_side * new_short / new_long), max_side
    return (new_short, new_long) if height <= width else (new_long, new_short)


def padded_size(height: int, width: int, divisibility: int) -> tuple[int, int]:
    return (math.ceil(height / divisibility) * divisibility,
            math.ceil(width / divisibility) * divisibility)


def frame_geometry(height: int, width: int, short_side: int, divisibility: int,
                   max_side: int | None = None) -> FrameGeometry:
    resized = resized_size(height, width, short_side, max_side)
    return FrameGeometry((height, width), resized, padded_size(*resized, divisibility))


def check_frame(frame: np.ndarray) -> np.ndarray:
    """Validate an RGB uint8 (H, W, 3) frame."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 frame of shape (H, W, 3), got {frame.dtype} {frame.shape}")
    return frame


def resize_frame(frame: np.ndarray, short_side: int, max_side: int | None = None) -> np.ndarray:
    """PIL bicubic resize of an RGB uint8 (H, W, 3) frame to :func:`resized_size`."""
    frame = check_frame(frame)
    height, width = frame.shape[:2]
    size = resized_size(height, width, short_side, max_side)
    if size == (height, width):
        return frame
    return np.asarray(Image.fromarray(frame).resize((size[1], size[0]), Image.BICUBIC))


def normalize_and_pad(frame: np.ndarray, mean: Tensor, std: Tensor, padded: tuple[int, int],
                      device: torch.device | str = "cpu") -> Tensor:
    """uint8 (H, W, 3) -> normalised float32 (1, 3, Hp, Wp), zero-padded bottom/right."""
    frame = np.ascontiguousarray(frame)
    if not frame.flags.writeable:  # e.g. np.asarray of a PIL image; torch wants writable memory
        frame = frame.copy()
    x = torch.from_numpy(frame).to(device).permute(2, 0, 1)
    x = (x - mean.view(-1, 1, 1)) / std.view(-1, 1, 1)
    height, width = x.shape[-2:]
    return F.pad(x, (0, padded[1] - width, 0, padded[0] - height)).unsqueeze(0)


def resize_masks(masks: np.ndarray | Tensor, geometry: FrameGeometry) -> Tensor:
    """(N, H, W) boolean masks at the original size -> (N, Hp, Wp) at the padded model input.

    The masks become 0/255 sketches and go through :func:`resize_sketches`, as
    the official demo does with the reference sketch.
    """
    masks = torch.as_tensor(np.asarray(masks))
    return resize_sketches((masks > 0).to(torch.uint8) * 255, geometry)


def resize_sketches(sketches: Tensor, geometry: FrameGeometry) -> Tensor:
    """(N, H, W) uint8 sketches at the original size (0 = not drawn, soft edges allowed) ->
    (N, Hp, Wp) bool at the padded model input: bilinear resize in uint8 arithmetic, ``> 0``,
    padded with False (the official demo on its gradio sketch pads)."""
    if sketches.ndim != 3:
        raise ValueError(f"expected masks of shape (N, H, W), got {tuple(sketches.shape)}")
    if tuple(sketches.shape[-2:]) != geometry.original:
        raise ValueError(
            f"mask size {tuple(sketches.shape[-2:])} differs from the frame size {geometry.original}")
    resized = F.interpolate(sketches.to(torch.uint8).unsqueeze(1), size=geometry.resized, mode="bilinear") > 0
    height, width = geometry.resized
    return F.pad(resized[:, 0], (0, geometry.padded[1] - width, 0, geometry.padded[0] - height))


def logits_to_frame(logits: Tensor, geometry: FrameGeometry, to_original: bool = True,
                    mode: str = "bilinear") -> Tensor:
    """Stride-4 mask logits (N, h, w) -> logits at the resized (or original) frame size.

    ``mode``: the demo resizes bilinearly; the official v1 interactive call bicubically.
    """
    up = F.interpolate(logits.unsqueeze(1).float(), size=geometry.padded, mode=mode, align_corners=False)
    height, width = geometry.resized
    up = up[..., :height, :width]
    if to_original and geometry.original != geometry.resized:
        up = F.interpolate(up, size=geometry.original, mode=mode, align_corners=False)
    return up[:, 0]
