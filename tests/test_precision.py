"""Reduced precision: bf16 autocast runs on the CPU and stays close to float32; fp16 on the CPU is refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import vos
from seem_core.segmenter import check_precision
from vos.errors import SettingsError


def test_bf16_on_the_cpu_is_close_to_float32(tmp_path):
    from vos.demo_clip import make_demo_clip

    clip = make_demo_clip(tmp_path / "clip", num_frames=3, size=(48, 64))
    runs = {p: list(vos.load("seem_tiny_random", device="cpu", precision=p, short_side=64)
                    .track(clip.frames_dir, clip.first_mask, logits=True)) for p in ("fp32", "bf16")}
    for full, reduced in zip(runs["fp32"][1:], runs["bf16"][1:]):
        difference = np.abs(full.logits - reduced.logits)
        assert 0 < difference.max() < 1.0  # bf16 really ran (not identical) and stays near
        confident = np.abs(full.logits) > 0.5
        assert ((full.logits > 0) == (reduced.logits > 0))[confident].mean() > 0.98


def test_fp16_needs_cuda():
    with pytest.raises(ValueError, match="'fp16' .* only supported on CUDA"):
        check_precision(torch.device("cpu"), "fp16")
    check_precision(torch.device("cpu"), "bf16")
    with pytest.raises(SettingsError, match="precision=fp16"):
        vos.load("seem_tiny_random", device="cpu", precision="fp16")


def test_winograd_and_direct_convolutions_agree_to_float32_rounding(tmp_path, monkeypatch):
    """``winograd`` (the CPU default) reaches the pixel decoder and changes logits only by rounding."""
    from seem_core import cpu_conv
    from seem_core.cpu_conv import nnpack_available
    from vos.demo_clip import make_demo_clip

    monkeypatch.setattr(cpu_conv, "MIN_WORK", 0)  # the tiny model's convolutions are below it

    calls = []
    nnpack = torch._nnpack_spatial_convolution
    monkeypatch.setattr(torch, "_nnpack_spatial_convolution", lambda *a: calls.append(a[0].shape) or nnpack(*a))
    clip = make_demo_clip(tmp_path / "clip", num_frames=3, size=(96, 128))
    runs = {}
    for winograd in (False, True):
        tracker = vos.load("seem_tiny_random", device="cpu", winograd=winograd, short_side=160)  # 1/4 map 40x56
        runs[winograd] = list(tracker.track(clip.frames_dir, clip.first_mask, logits=True))
        assert bool(calls) == (winograd and nnpack_available())
    for direct, winograd in zip(runs[False][1:], runs[True][1:]):
        np.testing.assert_allclose(winograd.logits, direct.logits, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(winograd.labels, direct.labels)
