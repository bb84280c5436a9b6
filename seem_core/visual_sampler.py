"""SEEM's visual sampler: turn masks into prompt tokens (referring images, strokes, clicks).

Supplementary Algorithm 1 of the SEEM paper, as the official decoders run it:
the positive pixels of each (padded) mask are listed row-major as normalised
coordinates ``(row / padded H, col / padded W)``; at most ``max_points`` of them
are kept by a random subset; features are read at those points by bilinear
sampling (``grid_sample``, ``align_corners=True``). The mean of the
mask-feature samples is the object's query vector; at every decoder level the
samples of that level's features, times a learned matrix, plus a learned
positive/negative indicator, are the prompt tokens.

The two official decoders differ only in how the subset is drawn and what an
empty mask's mean is:

* demo (``seem_demo``, the video path): a ``randperm`` subset, drawn only when
  there are more than ``max_points`` candidates, in random order; the mean of
  no points is 0 (``nan_to_num`` of an empty mean).
* v1 (``seem_v1``, the interactive path): a uniform ``multinomial`` draw
  without replacement of ``min(max_points, n)`` indices, re-sorted, made even
  when every candidate is kept (it still consumes random numbers); the mean of
  no points is -1 in every channel.

Random draws use an explicit ``torch.Generator`` so runs are reproducible. The
draw order is the official one (the mean query's positives for every mask, then
its negatives, then per level positives and negatives), so a generator seeded
like the official ``torch.manual_seed`` replays the official subsets exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class VisualPrompt:
    """Referring-image prompts of B objects, reusable on every later frame.

    ``query`` and ``negative_query`` are (B, C) (zeros where a mask has no
    pixel); ``tokens[l]`` is (B, T_l, C) for decoder level l, with
    ``padding[l]`` (B, T_l) True where a token is padding (objects with fewer
    sampled points than others).
    """

    query: Tensor
    negative_query: Tensor
    tokens: list[Tensor]
    padding: list[Tensor]
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return self.query.shape[0]

    def memo(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per ``key``: what the decoder derives from these tokens alone (their
        keys and values in each self-attention layer) is the same on every frame they prompt.
        It is kept as long as the prompt: ~19 MB per object for the released models."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def select(self, index: list[int] | Tensor) -> "VisualPrompt":
        """The prompts of a subset of objects (padding columns kept)."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.query.device)
        return VisualPrompt(
            self.query[index],
            self.negative_query[index],
            [t[index] for t in self.tokens],
            [p[index] for p in self.padding],
        )

    @staticmethod
    def concat(prompts: list["VisualPrompt"]) -> "VisualPrompt":
        """Stack prompts of several batches into one batch, padding tokens as needed (one: itself)."""
        if len(prompts) == 1:
            return prompts[0]
        levels = len(prompts[0].tokens)
        tokens, padding = [], []
        for level in range(levels):
            width = max(p.tokens[level].shape[1] for p in prompts)
            tokens.append(torch.cat([pad_width(p.tokens[level], width, 0.0) for p in prompts]))
            padding.append(torch.cat([pad_width(p.padding[level], width, True) for p in prompts]))
        return VisualPrompt(
            torch.cat([p.query for p in prompts]),
            torch.cat([p.negative_query for p in prompts]),
            tokens,
            padding,
        )


def pad_width(x: Tensor, width: int, value) -> Tensor:
    """Pad dimension 1 of ``x`` with ``value`` up to ``width`` (token batches of uneven length)."""
    if x.shape[1] == width:
        return x
    pad = x.new_full((x.shape[0], width - x.shape[1], *x.shape[2:]), value)
    return torch.cat([x, pad], dim=1)


class PointSampler:
    """Draws the demo decoder's point subsets (``randperm``) from one generator, in call order.

    With ``keep=True`` every draw is also kept in :attr:`draws` (the golden
    tests compare them with the official run's subsets). ``empty_value`` is the
    query of a mask without points.
    """

    empty_value = 0.0

    def __init__(self, generator: torch.Generator | None = None, keep: bool = False):
        self.generator = generator
        self.draws: list[Tensor] | None = [] if keep else None

    def __call__(self, mask: Tensor, max_points: int) -> Tensor:
        points = self.draw(mask, max_points)
        if self.draws is not None:
            self.draws.append(points)
        return points

    def draw(self, mask: Tensor, max_points: int) -> Tensor:
        return mask_points(mask, max_points, self.generator)


class SortedPointSampler(PointSampler):
    """The v1 decoder's draws: uniform ``multinomial`` subsets, sorted; an empty mask's query is -1."""

    empty_value = -1.0

    def draw(self, mask: Tensor, max_points: int) -> Tensor:
        return mask_points_sorted(mask, max_points, self.generator)


def mask_points(mask: Tensor, max_points: int, generator: torch.Generator | None) -> Tensor:
    """Normalised (row, col) coordinates of at most ``max_points`` pixels of ``mask``.

    ``mask`` is one padded (H, W) boolean mask. Coordinates are divided by the
    padded size, as the official code does. With more candidates than
    ``max_points``, a random subset is drawn (``randperm``, not re-sorted).
    """
    height, width = mask.shape[-2:]
    points = mask.nonzero().to(torch.float32) / torch.tensor(
        [height, width], dtype=torch.float32, device=mask.device
    )
    if points.shape[0] > max_points:
        order = torch.randperm(points.shape[0], generator=generator)[:max_points]
        points = points[order.to(points.device)]
    return points


def mask_points_sorted(mask: Tensor, max_points: int, generator: torch.Generator | None) -> Tensor:
    """Like :func:`mask_points`, but the subset is the v1 decoder's: ``multinomial`` over equal
    probabilities without replacement, ``min(max_points, n)`` indices, sorted ascending.

    The draw happens whenever the mask has a pixel, so the generator advances
    exactly as the official one does.
    """
    height, width = mask.shape[-2:]
    points = mask.nonzero().to(torch.float32) / torch.tensor(
        [height, width], dtype=torch.float32, device=mask.device
    )
    count = points.shape[0]
    if count == 0:
        return points
    probs = torch.ones(count) / count  # on the CPU, where the generator lives
    order = torch.multinomial(probs, min(max_points, count), replacement=False, generator=generator)
    return points[order.sort().values.to(points.device)]


def sample_features(features: Tensor, points: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Bilinear feature samples at each object's points.

    ``features`` is (1 or B, C, H, W); ``points[b]`` is (n_b, 2) normalised
    (row, col). Returns samples (B, n_max, C) and padding (B, n_max).
    """
    count = len(points)
    n_max = max((p.shape[0] for p in points), default=0)
    grid = features.new_zeros(count, n_max, 1, 2)
    padding = torch.ones(count, n_max, dtype=torch.bool, device=features.device)
    for b, p in enumerate(points):
        # grid_sample wants (x, y) in [-1, 1]
        grid[b, : p.shape[0], 0] = p.flip(-1).to(grid.dtype) * 2.0 - 1.0
        padding[b, : p.shape[0]] = False
    if n_max == 0:
        return features.new_zeros(count, 0, features.shape[1]), padding
    source = features.expand(count, -1, -1, -1) if features.shape[0] == 1 else features
    samples = F.grid_sample(source, grid, mode="bilinear", align_corners=True)
    samples = samples.squeeze(-1).transpose(1, 2)
    return samples.masked_fill(padding.unsqueeze(-1), 0.0), padding


def masked_mean(samples: Tensor, padding: Tensor, empty_value: float = 0.0) -> Tensor:
    """Mean over the non-padded samples of each object; ``empty_value`` where there are none."""
    valid = (~padding).unsqueeze(-1).to(samples.dtype)
    count = valid.sum(dim=1)
    mean = (samples * valid).sum(dim=1) / count.clamp(min=1)
    return torch.where(count > 0, mean, torch.full_like(mean, empty_value))
