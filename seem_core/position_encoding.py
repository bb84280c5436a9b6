"""Normalised 2-D sine position code (DETR / Mask2Former ``PositionEmbeddingSine``).

SEEM only ever uses it without a padding mask and with ``normalize=True``, so
a position depends on its row or its column alone: the code is computed once
per row and once per column and broadcast over the map, instead of evaluating
``sin``/``cos`` at every pixel. The arithmetic (cumulative index, division by
``last + 1e-6``, scaling by 2*pi, powers of the temperature) follows the
official operation order so the values agree to float rounding.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

_EPS = 1e-6
_SCALE = 2 * math.pi


def _axis_code(length: int, num_pos_feats: int, device, dtype: torch.dtype,
               temperature: float) -> Tensor:
    """(length, num_pos_feats) code of positions 1..length along one axis, sin/cos interleaved."""
    index = torch.arange(1, length + 1, device=device, dtype=dtype)
    position = index / (index[-1:] + _EPS) * _SCALE
    steps = torch.arange(num_pos_feats, device=device, dtype=dtype)
    freq = temperature ** (2 * torch.div(steps, 2, rounding_mode="floor") / num_pos_feats)
    angle = position[:, None] / freq
    return torch.stack((angle[:, 0::2].sin(), angle[:, 1::2].cos()), dim=2).flatten(1)


def sine_position_encoding(size: tuple[int, int], num_pos_feats: int, *, device=None,
                           dtype: torch.dtype = torch.float32,
                           temperature: float = 10000.0) -> Tensor:
    """Position code of an unpadded (h, w) map: (1, 2*num_pos_feats, h, w), y-channels first."""
    h, w = (int(s) for s in size)
    if h <= 0 or w <= 0 or num_pos_feats <= 0 or num_pos_feats % 2:
        raise ValueError(
            f"sine_position_encoding needs a non-empty size and an even num_pos_feats, "
            f"got size={tuple(size)}, num_pos_feats={num_pos_feats}"
        )
    code_y = _axis_code(h, num_pos_feats, device, dtype, temperature)  # (h, F)
    code_x = _axis_code(w, num_pos_feats, device, dtype, temperature)  # (w, F)
    out = torch.empty(1, 2 * num_pos_feats, h, w, device=device, dtype=dtype)
    out[0, :num_pos_feats] = code_y.t()[:, :, None]
    out[0, num_pos_feats:] = code_x.t()[:, None, :]
    return out
