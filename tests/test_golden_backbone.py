"""Backbones against the official SEEM implementation (golden data), and FocalNet's own checks.

The SAM ViT's own checks are in tests/test_vit.py.
"""
from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F
from conftest import compare_stage

from seem_core.config import ConfigError, FocalNetConfig
from seem_core.focalnet import FocalModulation, FocalNet
from seem_core.model import build_backbone


def _tiny_config(**overrides) -> FocalNetConfig:
    base = dict(embed_dim=8, depths=(1, 1, 1, 1), focal_levels=(2, 2, 2, 2), focal_windows=(3, 3, 3, 3))
    return FocalNetConfig(**{**base, **overrides})


@pytest.mark.parametrize("step", ["ref", "f2"])
@pytest.mark.parametrize("grad", [False, True], ids=["inference", "autograd"])
def test_backbone_matches_official(golden_variant, step, grad):
    # Inference on CPU takes FocalNet's fused oneDNN ops; with autograd on, the plain PyTorch ops.
    backbone = build_backbone(golden_variant.config).eval()
    backbone.load_state_dict(golden_variant.state_dict_of("backbone."), strict=True)
    with torch.set_grad_enabled(grad):
        features = backbone(golden_variant.io[f"{step}.images_tensor"])
    compare_stage(golden_variant, f"{step}.backbone.", {k: v.detach() for k, v in features.items()})


@pytest.mark.parametrize("depthwise", [True, False])
@pytest.mark.parametrize("use_conv_embed", [True, False])
def test_any_input_size_gives_ceil_strided_maps(depthwise, use_conv_embed):
    # 100 x 130 is divisible by neither 4 nor 32. The stem pads to 100 x 132 -> 25 x 33;
    # every downsampling pads to even first: 26 x 34 -> 13 x 17, 14 x 18 -> 7 x 9, 8 x 10 -> 4 x 5.
    cfg = _tiny_config(depthwise=depthwise, use_conv_embed=use_conv_embed)
    backbone = FocalNet(cfg).eval()
    with torch.inference_mode():
        features = backbone(torch.randn(2, 3, 100, 130))
    shapes = {name: tuple(map(int, value.shape)) for name, value in features.items()}
    assert shapes == {
        "res2": (2, 8, 25, 33),
        "res3": (2, 16, 13, 17),
        "res4": (2, 32, 7, 9),
        "res5": (2, 64, 4, 5),
    }
    stem_kernel = 7 if use_conv_embed else 4
    assert backbone.patch_embed.proj.weight.shape == (8, 3, stem_kernel, stem_kernel)


def test_only_requested_stages_are_normalised_and_returned():
    backbone = FocalNet(_tiny_config(out_indices=(1, 3))).eval()
    assert backbone.out_channels == {"res3": 16, "res5": 64}
    norms = sorted({key.split(".")[0] for key in backbone.state_dict() if key.startswith("norm")})
    assert norms == ["norm1", "norm3"]
    with torch.inference_mode():
        features = backbone(torch.randn(1, 3, 64, 64))
    assert sorted(features) == ["res3", "res5"]
    # Each output comes out of a LayerNorm with unit weight and zero bias: zero mean over channels.
    assert torch.allclose(features["res3"].mean(1), torch.zeros(1, 8, 8), atol=1e-5)


@pytest.mark.parametrize("scaling_modulator", [True, False])
def test_focal_modulation_matches_hand_derived_formula(scaling_modulator):
    # Weights chosen so every step is explicit: q = ctx = x, all gates = 1, one 1x1 focal
    # level with weight 1, h and proj the identity. Then the output is
    #   x * (gelu(x) + gelu(mean_hw(gelu(x)))) / (2 if scaling else 1).
    dim = 3
    modulation = FocalModulation(dim, focal_level=1, focal_window=1, scaling_modulator=scaling_modulator)
    eye = torch.eye(dim)
    with torch.no_grad():
        modulation.f.weight.copy_(torch.cat([eye, eye, torch.zeros(2, dim)]))
        modulation.f.bias.copy_(torch.tensor([0.0] * (2 * dim) + [1.0, 1.0]))
        modulation.focal_layers[0][0].weight.fill_(1.0)
        modulation.h.weight.copy_(eye[:, :, None, None])
        modulation.h.bias.zero_()
        modulation.proj.weight.copy_(eye)
        modulation.proj.bias.zero_()
    x = torch.randn(2, 5, 6, dim)
    local = F.gelu(x)
    global_context = F.gelu(local.mean((1, 2), keepdim=True))
    expected = x * (local + global_context) / (2 if scaling_modulator else 1)
    with torch.inference_mode():
        assert torch.allclose(modulation(x), expected, atol=1e-6)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(focal_levels=(2, 2, 2)), "focal_levels has 3 entries for 4 stages"),
        (dict(out_indices=(0, 4)), r"out_indices \[4\] outside the 4 stages"),
        (dict(out_indices=()), "out_indices is empty"),
        (dict(embed_dim=0), "embed_dim, patch_size and mlp_ratio must be positive"),
    ],
)
def test_invalid_config_is_rejected_with_the_reason(overrides, message):
    with pytest.raises(ConfigError, match=message):
        FocalNet(_tiny_config(**overrides))


def test_wrong_input_shape_is_rejected():
    backbone = FocalNet(_tiny_config())
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\).*\(3, 64, 64\)"):
        backbone(torch.randn(3, 64, 64))
