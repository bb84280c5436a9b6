"""Clicks, strokes and boxes as SEEM spatial prompts: the masks the model reads them as.

SEEM takes every spatial prompt as a positive and a negative mask on the frame
(its visual sampler then draws up to 512 points inside each). This module makes
those masks the way the official code makes them:

* **Stroke** -- what the official image demo receives from its gradio sketch
  pad: the brush layer's alpha at the frame's size, a polyline of the brush
  width with round caps and joins and soft (anti-aliased) edges. We draw it like
  a canvas: the polyline through the pixel centres and a disc of the brush
  width at every vertex, supersampled 4x and box-filtered down (this
  reproduces the golden stroke sketch bit for bit). The demo then resizes the
  uint8 sketch bilinearly to the model input and keeps ``> 0``
  (:func:`~seem_core.preprocess.resize_sketches`).
* **Click** -- the official v1 interactive evaluation's click
  (``prepare_next_spaital_mask``): one pixel of the model-input mask, dilated by
  the model's ``dilation_kernel`` (3x3 ones, ``conv2d(..., padding=1) > 0``),
  i.e. a 3x3 square at the model's input resolution whatever the frame size.
  A click at (x, y) marks the resized-frame pixel that contains that point.
  (The gradio demo has no clicks.)
* **Box** -- SEEM has no box encoder; its visual sampler reads "the area covered
  by the visual prompt", so a box is the filled rectangle of the frame pixels
  whose centres lie inside it, drawn at the frame's size like a stroke.
* **Negative** prompts are the same shapes in the negative mask (the v1
  evaluation's negative clicks; the demo has only positive strokes).

Coordinates are (x, y) = (column, row) in pixels of the original frame, the
convention of SAM 2's points and boxes; pixel (x, y) has its centre at (x, y).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import Tensor

from .preprocess import FrameGeometry, resize_sketches

# Strokes are drawn at this many sub-pixels per pixel and box-filtered down (a canvas's anti-aliasing).
SUPERSAMPLING = 4


class PromptError(ValueError):
    """A prompt that cannot be used (a click outside the frame, an empty stroke, ...), with the reason."""


@dataclass(frozen=True)
class SpatialPrompt:
    """One object's positive and negative spatial prompts on one frame.

    ``positive`` / ``negative`` (H, W) uint8 sketches at the frame's size hold
    strokes, boxes and masks (0 = not drawn; soft edges allowed); ``points``
    (K, 2) float (x, y) and ``labels`` (K,) bool (True = positive) hold clicks,
    which are drawn only at the model's input resolution. Combine prompts
    with ``|``.
    """

    positive: Tensor
    negative: Tensor
    points: Tensor
    labels: Tensor

    @staticmethod
    def empty(size: tuple[int, int]) -> "SpatialPrompt":
        blank = torch.zeros(size, dtype=torch.uint8)
        return SpatialPrompt(blank, blank, torch.zeros(0, 2), torch.zeros(0, dtype=torch.bool))

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the frame the prompt was drawn on."""
        return tuple(self.positive.shape)

    @property
    def has_positive(self) -> bool:
        return bool(self.positive.any() or self.labels.any())

    @property
    def has_negative(self) -> bool:
        return bool(self.negative.any() or (~self.labels).any())

    def __or__(self, other: "SpatialPrompt") -> "SpatialPrompt":
        if other.size != self.size:
            raise PromptError(f"cannot combine prompts drawn on frames of size {self.size} and {other.size}")
        return SpatialPrompt(torch.maximum(self.positive, other.positive), torch.maximum(self.negative, other.negative),
                             torch.cat([self.points, other.points]), torch.cat([self.labels, other.labels]))


def clicks(points: Sequence[Sequence[float]] | np.ndarray | Tensor, labels: Sequence[bool] | np.ndarray | Tensor,
           size: tuple[int, int]) -> SpatialPrompt:
    """Clicks at (x, y) frame pixels; ``labels`` True (or 1) = positive, False (0) = negative."""
    height, width = size
    points = torch.as_tensor(np.asarray(points, dtype=np.float32)).reshape(-1, 2)
    labels = torch.as_tensor(np.asarray(labels)).reshape(-1)
    if labels.shape[0] != points.shape[0]:
        raise PromptError(f"{points.shape[0]} click(s) but {labels.shape[0]} label(s)")
    if labels.dtype != torch.bool:
        if not bool(((labels == 0) | (labels == 1)).all()):
            raise PromptError(f"click labels must be 1 (positive) or 0 (negative), got {labels.tolist()}")
        labels = labels == 1
    for x, y in points.tolist():
        if not (0 <= x < width and 0 <= y < height):
            raise PromptError(f"click (x={x:g}, y={y:g}) is outside the {width}x{height} frame")
    return replace(SpatialPrompt.empty(size), points=points, labels=labels)


def stroke(points: Sequence[Sequence[float]] | np.ndarray, width: float, size: tuple[int, int],
           positive: bool = True) -> SpatialPrompt:
    """A brush stroke through (x, y) frame pixels, ``width`` pixels wide (one point: a dot)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if points.shape[0] == 0:
        raise PromptError("empty stroke: a stroke needs at least one point")
    if not width > 0:
        raise PromptError(f"stroke width must be positive, got {width}")
    sketch = draw_stroke(points, width, size)
    if not sketch.any():
        raise PromptError(f"the stroke draws no pixel inside the {size[1]}x{size[0]} frame")
    return _sketch_prompt(sketch, positive)


def box(xyxy: Sequence[float], size: tuple[int, int], positive: bool = True) -> SpatialPrompt:
    """A box (x0, y0, x1, y1) in frame pixels: the pixels whose centres lie inside it."""
    height, width = size
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    if x0 > x1 or y0 > y1:
        raise PromptError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) has x0 > x1 or y0 > y1")
    cols = range(max(math.ceil(x0), 0), min(math.floor(x1), width - 1) + 1)
    rows = range(max(math.ceil(y0), 0), min(math.floor(y1), height - 1) + 1)
    if not cols or not rows:
        raise PromptError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) covers no pixel of the {width}x{height} frame")
    sketch = torch.zeros(size, dtype=torch.uint8)
    sketch[rows.start:rows.stop, cols.start:cols.stop] = 255
    return _sketch_prompt(sketch, positive)


def mask(drawn: np.ndarray | Tensor, positive: bool = True) -> SpatialPrompt:
    """A drawn (H, W) mask as a spatial prompt: bool, or a uint8 sketch whose soft values are kept."""
    drawn = torch.as_tensor(np.asarray(drawn))
    if drawn.ndim != 2:
        raise PromptError(f"a drawn mask must be (H, W), got shape {tuple(drawn.shape)}")
    sketch = drawn.to(torch.uint8) if drawn.dtype == torch.uint8 else (drawn > 0).to(torch.uint8) * 255
    if not sketch.any():
        raise PromptError("the drawn mask is empty")
    return _sketch_prompt(sketch, positive)


def _sketch_prompt(sketch: Tensor, positive: bool) -> SpatialPrompt:
    empty = SpatialPrompt.empty(tuple(sketch.shape))
    return replace(empty, positive=sketch) if positive else replace(empty, negative=sketch)


def draw_stroke(points: np.ndarray, width: float, size: tuple[int, int]) -> Tensor:
    """The (H, W) uint8 canvas sketch of a polyline: round caps and joins, 4x4 supersampled.

    Only the stroke's bounding box is rendered (a 4x canvas of a whole 4K frame
    would be large); its origin is a whole pixel, so the box filter's blocks
    are the whole canvas's.
    """
    height, width_px = size
    reach = width / 2 + 1
    left = max(int(math.floor(points[:, 0].min() - reach)), 0)
    top = max(int(math.floor(points[:, 1].min() - reach)), 0)
    right = min(int(math.ceil(points[:, 0].max() + reach)) + 1, width_px)
    bottom = min(int(math.ceil(points[:, 1].max() + reach)) + 1, height)
    sketch = torch.zeros(size, dtype=torch.uint8)
    if left >= right or top >= bottom:
        return sketch
    s = SUPERSAMPLING
    canvas = Image.new("L", ((right - left) * s, (bottom - top) * s), 0)
    draw = ImageDraw.Draw(canvas)
    # Pixel (x, y) spans sub-pixels s*x .. s*x + s-1, so its centre is at s*x + (s-1)/2.
    centres = [((x - left) * s + (s - 1) / 2, (y - top) * s + (s - 1) / 2) for x, y in points]
    if len(centres) > 1:
        draw.line(centres, fill=255, width=round(width * s))
    radius = width * s / 2
    for x, y in centres:
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    small = canvas.resize((right - left, bottom - top), Image.BOX)
    sketch[top:bottom, left:right] = torch.from_numpy(np.asarray(small).copy())
    return sketch


def model_masks(prompts: Sequence[SpatialPrompt], geometry: FrameGeometry,
                dilation_kernel: Tensor) -> tuple[Tensor, Tensor]:
    """Positive and negative (N, Hp, Wp) bool masks at the padded model input for N objects.

    Sketches (strokes, boxes, masks) are resized like the demo's sketch; clicks
    are marked on the resized frame and dilated by ``dilation_kernel``
    (1, 1, k, k), as the official v1 click simulation does.
    """
    for prompt in prompts:
        if prompt.size != geometry.original:
            raise PromptError(f"a spatial prompt drawn on a frame of size {prompt.size} "
                              f"cannot be used on a frame of size {geometry.original}")
    sketches = torch.stack([s for p in prompts for s in (p.positive, p.negative)])
    resized = resize_sketches(sketches, geometry).view(len(prompts), 2, *geometry.padded)
    return tuple(resized[:, i] | _click_masks(prompts, geometry, dilation_kernel, positive=i == 0)
                 for i in range(2))


def _click_masks(prompts: Sequence[SpatialPrompt], geometry: FrameGeometry, kernel: Tensor,
                 positive: bool) -> Tensor:
    (height, width), (res_h, res_w) = geometry.original, geometry.resized
    marks = torch.zeros(len(prompts), 1, *geometry.padded)
    for n, prompt in enumerate(prompts):
        for (x, y), label in zip(prompt.points.tolist(), prompt.labels.tolist()):
            if label == positive:
                row = min(int((y + 0.5) * res_h / height), res_h - 1)
                col = min(int((x + 0.5) * res_w / width), res_w - 1)
                marks[n, 0, row, col] = 1.0
    size = kernel.shape[-1]
    dilated = F.conv2d(marks, kernel.to(marks.dtype).cpu(), padding=size // 2) > 0
    return dilated[:, 0]
