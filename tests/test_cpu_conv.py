"""The CPU convolution algorithms (Winograd 3x3, GEMM 1x1) and the exact-factor resampling shortcuts.

Expectations are independent of the code under test: float64 direct convolutions,
``F.interpolate``, and hand-computed block means.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seem_core import cpu_conv
from seem_core.cpu_conv import MIN_POSITIONS, MIN_WORK, nnpack_available, use_winograd
from seem_core.decoder import downsample_bilinear
from seem_core.pixel_decoder import add_upsampled_

needs_nnpack = pytest.mark.skipif(not nnpack_available(), reason="this PyTorch build has no NNPACK")


@pytest.fixture
def nnpack_calls(monkeypatch) -> list:
    """Records each call of NNPACK's convolution (the Winograd path) and still runs it."""
    calls = []
    nnpack = torch._nnpack_spatial_convolution
    monkeypatch.setattr(torch, "_nnpack_spatial_convolution", lambda *a: calls.append(a[0].shape) or nnpack(*a))
    return calls


def conv3x3(channels_in: int = 128, channels_out: int = 256, bias: bool = True) -> nn.Conv2d:
    torch.manual_seed(0)
    return nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=bias).eval()


@torch.no_grad()
def float64_reference(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    bias = None if conv.bias is None else conv.bias.double()
    return F.conv2d(x.double(), conv.weight.double(), bias, conv.stride, conv.padding)


def assert_float32_close(out: torch.Tensor, expected: torch.Tensor) -> None:
    """Within the golden tolerance's scale (1e-4 of the outputs), and 1e-5 on average."""
    error, scale = (out.double() - expected).abs(), expected.abs().max()
    assert error.max() <= 1e-4 * scale and error.mean() <= 1e-5 * scale


@needs_nnpack
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_winograd_equals_direct_convolution_to_float32_rounding(bias, layout, nnpack_calls):
    conv = conv3x3(bias=bias)
    x = torch.randn(2, 128, 48, 64).contiguous(memory_format=layout)
    assert 48 * 64 >= MIN_POSITIONS and 48 * 64 * 128 * 256 >= MIN_WORK
    with torch.inference_mode(), use_winograd():
        out = cpu_conv.conv2d(conv, x)
    assert nnpack_calls == [x.shape]
    expected = float64_reference(conv, x)
    assert out.shape == expected.shape and out.is_contiguous()
    assert_float32_close(out, expected)


@pytest.mark.parametrize("case", ["off", "small map", "few channels", "stride 2", "bf16 without autocast",
                                  "autograd", "float64"])
def test_winograd_is_left_out_where_it_does_not_apply(case, nnpack_calls):
    conv = conv3x3()
    x = torch.randn(1, 128, 48, 64)
    enabled = case != "off"
    if case == "small map":
        conv, x = conv3x3(512, 512), torch.randn(1, 512, 30, 30)
        assert 30 * 30 < MIN_POSITIONS and 30 * 30 * 512 * 512 >= MIN_WORK
    if case == "few channels":
        conv, x = conv3x3(16, 16), torch.randn(1, 16, 48, 64)
        assert 48 * 64 * 16 * 16 < MIN_WORK
    if case == "stride 2":
        conv.stride = (2, 2)
    if case == "float64":
        conv, x = conv.double(), x.double()
    if case == "bf16 without autocast":
        conv, x = conv.bfloat16(), x.bfloat16()
    grad = case == "autograd"
    with torch.set_grad_enabled(grad), use_winograd(enabled):
        out = cpu_conv.conv2d(conv, x)
        expected = conv(x)
    assert nnpack_calls == []
    assert torch.equal(out, expected)


@needs_nnpack
def test_under_bf16_autocast_winograd_runs_in_float32(nnpack_calls):
    conv = conv3x3()
    x = torch.randn(1, 128, 48, 64)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16), use_winograd():
        out = cpu_conv.conv2d(conv, x.bfloat16())
    assert nnpack_calls == [x.shape] and out.dtype == torch.float32
    assert_float32_close(out, float64_reference(conv, x.bfloat16().float()))


def test_winograd_scope_is_restored():
    x = torch.randn(1, 3, 8, 8)
    with use_winograd():
        with use_winograd(False):
            assert not cpu_conv.winograd_active(x)
        assert cpu_conv.winograd_active(x) == nnpack_available()
    assert not cpu_conv.winograd_active(x)


@pytest.mark.parametrize("bias", [True, False])
def test_pointwise_conv_of_nchw_maps_is_a_matrix_product(bias):
    torch.manual_seed(1)
    conv = nn.Conv2d(24, 40, 1, bias=bias).eval()
    x = torch.randn(2, 24, 7, 9)
    with torch.inference_mode():
        out = cpu_conv.conv2d(conv, x)
        expected = float64_reference(conv, x)
    assert out.shape == (2, 40, 7, 9) and out.is_contiguous()
    assert_float32_close(out, expected)


def test_channels_last_pointwise_conv_keeps_the_module_convolution():
    conv = nn.Conv2d(24, 40, 1).eval()
    x = torch.randn(1, 24, 7, 9).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert torch.equal(cpu_conv.conv2d(conv, x), conv(x))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_add_upsampled_at_twice_the_size_equals_nearest_interpolation(layout):
    y = torch.randn(2, 5, 6, 7)
    x = torch.randn(2, 5, 12, 14).contiguous(memory_format=layout)
    expected = x + F.interpolate(y, size=(12, 14), mode="nearest")
    out = add_upsampled_(x, y)
    assert out.data_ptr() == x.data_ptr()  # in place
    assert torch.equal(out, expected)


def test_add_upsampled_at_other_sizes_interpolates():
    y = torch.randn(1, 3, 4, 5)
    x = torch.randn(1, 3, 12, 11)
    expected = x + F.interpolate(y, size=(12, 11), mode="nearest")
    assert torch.equal(add_upsampled_(x, y), expected)


@pytest.mark.parametrize("size, out", [((64, 88), (32, 44)), ((64, 88), (16, 22)), ((64, 88), (8, 11)),
                                       ((64, 88), (16, 11)), ((60, 90), (20, 30)), ((64, 88), (20, 30))])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_downsample_bilinear_equals_interpolate(size, out, layout):
    x = torch.randn(2, 6, *size).contiguous(memory_format=layout)
    expected = F.interpolate(x, size=out, mode="bilinear", align_corners=False)
    assert torch.allclose(downsample_bilinear(x, out), expected, rtol=0, atol=1e-6)


def test_downsample_bilinear_by_four_is_the_mean_of_each_blocks_middle():
    """4x4 -> 1x1: bilinear (align_corners=False) samples at (1.5, 1.5): the mean of rows/cols 1 and 2."""
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert downsample_bilinear(x, (1, 1)).item() == (5 + 6 + 9 + 10) / 4
