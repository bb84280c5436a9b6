"""The pixel decoder and the sine position code against the official SEEM implementation.

Golden tensors come from the official pixel decoder of each variant
(``transformer_encoder_fpn``, or ``transformer_encoder_deform`` with its
PyTorch fallback) run on the golden backbone outputs. The deformable decoder's
own checks are in tests/test_deform_pixel_decoder.py.
"""
from __future__ import annotations

import math

import pytest
import torch

from conftest import compare_stage
from seem_core.config import ConfigError, PixelDecoderConfig
from seem_core import cpu_conv
from seem_core.cpu_conv import nnpack_available, use_winograd
from seem_core.model import build_pixel_decoder
from seem_core.pixel_decoder import TransformerEncoderPixelDecoder
from seem_core.position_encoding import sine_position_encoding

PREFIX = "sem_seg_head.pixel_decoder."
LEVELS = ("res2", "res3", "res4", "res5")


def _backbone_channels(embed_dim: int) -> dict[str, int]:
    return {name: embed_dim * 2**i for i, name in enumerate(LEVELS)}


def _golden_decoder(variant) -> torch.nn.Module:
    in_channels = {name: variant.io[f"ref.backbone.{name}"].shape[1] for name in LEVELS}
    decoder = build_pixel_decoder(variant.config, in_channels)
    decoder.load_state_dict(variant.state_dict_of(PREFIX), strict=True)
    return decoder.eval()


@pytest.mark.parametrize("winograd", [False, True], ids=["direct", "winograd"])
@pytest.mark.parametrize("stage", ["ref", "f2"])
def test_pixel_decoder_matches_official(golden_variant, stage, winograd, monkeypatch):
    """Both convolution algorithms (seem_core.cpu_conv) hold the golden tolerances.

    The tiny variants' convolutions are below Winograd's work threshold; it is lifted here,
    since this checks the arithmetic, not when Winograd pays.
    """
    monkeypatch.setattr(cpu_conv, "MIN_WORK", 0)
    calls = []
    nnpack = torch._nnpack_spatial_convolution
    monkeypatch.setattr(torch, "_nnpack_spatial_convolution", lambda *a: calls.append(a[0].shape) or nnpack(*a))
    decoder = _golden_decoder(golden_variant)
    features = {name: golden_variant.io[f"{stage}.backbone.{name}"] for name in LEVELS}
    with torch.inference_mode(), use_winograd(winograd):
        mask_features, multi_scale = decoder(features)
    # Every golden variant's stride-4 maps are large enough for Winograd (its output 3x3 conv there).
    assert len(calls) >= (1 if winograd and nnpack_available() else 0)
    assert winograd or not calls
    produced = {"mask_features": mask_features}
    produced.update({f"multi_scale_features.{i}": x for i, x in enumerate(multi_scale)})
    compare_stage(golden_variant, f"{stage}.pixel_decoder.", produced)


def test_sine_position_encoding_matches_official(golden_variant):
    hidden_dim = golden_variant.config.decoder.hidden_dim
    produced = {}
    for i in range(3):
        # The level's size is that of the multi-scale map the decoder read.
        h, w = golden_variant.io[f"f2.pixel_decoder.multi_scale_features.{i}"].shape[-2:]
        code = sine_position_encoding((h, w), hidden_dim // 2)
        assert code.shape == (1, hidden_dim, h, w)
        produced[str(i)] = code.flatten(2).permute(2, 0, 1)
    compare_stage(golden_variant, "f2.decoder_in.pos.", produced)


def test_sine_position_encoding_hand_computed():
    """2x3 map, 4 features per axis: frequencies 1, 1, 1/100, 1/100 (10000^(2*(i//2)/4))."""
    code = sine_position_encoding((2, 3), 4)
    assert code.shape == (1, 8, 2, 3)

    def axis(index: int, length: int) -> list[float]:
        a = 2 * math.pi * index / (length + 1e-6)
        return [math.sin(a), math.cos(a), math.sin(a / 100), math.cos(a / 100)]

    for row in range(2):
        for col in range(3):
            expected = axis(row + 1, 2) + axis(col + 1, 3)
            assert code[0, :, row, col].tolist() == pytest.approx(expected, abs=1e-6)


def test_output_strides_and_pre_norm_variant():
    """Shapes follow the strides; pre-norm adds the encoder's final LayerNorm, as officially."""
    cfg = PixelDecoderConfig(conv_dim=64, mask_dim=48, num_encoder_layers=1, nheads=4,
                             dim_feedforward=32, pre_norm=True)
    decoder = TransformerEncoderPixelDecoder(cfg, _backbone_channels(16)).eval()
    assert "transformer.encoder.norm.weight" in decoder.state_dict()
    features = {name: torch.randn(1, 16 * 2**i, 64 // 2**i, 96 // 2**i) for i, name in enumerate(LEVELS)}
    with torch.inference_mode():
        mask_features, multi_scale = decoder(features)
    assert mask_features.shape == (1, 48, 64, 96)
    assert [tuple(x.shape) for x in multi_scale] == [(1, 64, 8, 12), (1, 64, 16, 24), (1, 64, 32, 48)]


def test_bad_config_is_rejected():
    with pytest.raises(ConfigError, match="res6"):
        TransformerEncoderPixelDecoder(PixelDecoderConfig(in_features=("res2", "res6")), _backbone_channels(16))
    with pytest.raises(ConfigError, match="BN"):
        TransformerEncoderPixelDecoder(PixelDecoderConfig(norm="BN"), _backbone_channels(16))
