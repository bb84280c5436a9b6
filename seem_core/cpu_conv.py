"""Faster CPU algorithms for the pixel decoder's convolutions: Winograd 3x3, GEMM 1x1.

Why: oneDNN computes 3x3 convolutions directly, and on the CPU the pixel decoder's
stride-4 and stride-8 3x3 convolutions (512 -> 512 channels) are half of a Focal-T
frame. Winograd F(6x6, 3x3) needs ~5x fewer multiplications; NNPACK (inside the
Linux and macOS PyTorch builds) runs those convolutions ~2.8x faster here. Results
differ from the direct algorithm by float32 rounding (~1e-5 relative; measured per
model in ``benchmarks/precision_deviation.py``), well inside the golden tolerances.

NNPACK reads (B, C, H, W) maps, where oneDNN's 1x1 convolutions are slow (it
reorders them): those run as one matrix product instead.

Winograd is opt-in per scope, like a ``torch.backends`` flag::

    with use_winograd():
        mask_features, multi_scale = pixel_decoder(backbone_maps)

and only applies where it is exact up to rounding and faster: float32 on the CPU, no
autograd, stride 1, padding 1, large enough maps (``MIN_POSITIONS``, ``MIN_WORK``).
Under CPU bf16 autocast these convolutions run by Winograd in float32 too (faster
than bf16 direct).
NNPACK sizes its thread pool once, from ``torch.get_num_threads()`` at its first call.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Iterator

import torch
from torch import Tensor, nn

# Winograd pays from about 1000 positions and 1e8 multiply-adds per kernel tap (measured, 2 threads):
# 512->512 channels, 16x29: direct 12 ms vs 16 ms; 32x58: 41 vs 32 ms; 128x232: 670 vs 235 ms.
# 64->64 channels at 128x176 (9e7) is faster alone (10.9 vs 8.3 ms), not once the rest of the
# pixel decoder runs in the layout NNPACK needs (a tiny model's frame: 9% slower).
MIN_POSITIONS = 1024
MIN_WORK = 100_000_000  # positions x input channels x output channels

_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("seem_core_winograd", default=False)


@contextlib.contextmanager
def use_winograd(enabled: bool = True) -> Iterator[None]:
    """Use (or stop using) Winograd for the eligible 3x3 convolutions run inside this scope."""
    token = _ENABLED.set(enabled)
    try:
        yield
    finally:
        _ENABLED.reset(token)


@functools.cache
def nnpack_available() -> bool:
    """Whether NNPACK runs here; the check also initialises it, which its convolution needs first."""
    return torch.backends.nnpack.is_available()


def winograd_active(x: Tensor) -> bool:
    """Whether large 3x3 convolutions of ``x`` run through Winograd here (scope, device, dtype)."""
    return (_ENABLED.get() and x.device.type == "cpu" and nnpack_available()
            and (x.dtype == torch.float32 or (x.dtype == torch.bfloat16 and torch.is_autocast_enabled("cpu"))))


def _geometry(conv: nn.Conv2d, kernel: int, padding: int) -> bool:
    return (conv.kernel_size == (kernel, kernel) and conv.stride == (1, 1) and conv.padding == (padding, padding)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros")


def winograd_applies(conv: nn.Conv2d, x: Tensor) -> bool:
    """Whether :func:`conv2d` runs ``conv`` on ``x`` (or on a map of its size and dtype) by Winograd."""
    return (winograd_active(x) and x.dim() == 4 and conv.weight.dtype == torch.float32 and _geometry(conv, 3, 1)
            and x.shape[-2] * x.shape[-1] >= MIN_POSITIONS
            and x.shape[-2] * x.shape[-1] * conv.in_channels * conv.out_channels >= MIN_WORK
            and not (torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad)))


def _pointwise_gemm(conv: nn.Conv2d, x: Tensor) -> bool:
    return (x.device.type == "cpu" and x.dim() == 4 and x.is_contiguous() and x.shape[-2] * x.shape[-1] > 1
            and _geometry(conv, 1, 0))


def conv2d(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``conv``'s convolution of ``x`` (the module's norm/activation not included).

    Winograd where eligible, a matrix product for 1x1 convolutions of (B, C, H, W) maps,
    else the module's own convolution. The first two return (B, C, H, W)-contiguous maps.
    """
    if winograd_applies(conv, x):
        return torch._nnpack_spatial_convolution(x.float().contiguous(), conv.weight, conv.bias, [1, 1])
    if _pointwise_gemm(conv, x):
        weight = conv.weight.flatten(1).expand(x.shape[0], -1, -1)
        if conv.bias is None:
            out = torch.bmm(weight, x.flatten(2))
        else:
            out = torch.baddbmm(conv.bias[:, None], weight, x.flatten(2))
        return out.unflatten(-1, x.shape[-2:])
    return conv._conv_forward(x, conv.weight, conv.bias)
