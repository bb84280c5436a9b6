"""The deformable pixel decoder's own behaviour (its golden comparison is in tests/test_golden_pixel_decoder.py)."""
from __future__ import annotations

import math

import pytest
import torch

from seem_core.config import ConfigError, DeformPixelDecoderConfig
from seem_core.deform_pixel_decoder import ENCODER_FFN_DIM, DeformablePixelDecoder, deformable_sampling, \
    reference_points

CHANNELS = {"res2": 8, "res3": 16, "res4": 32, "res5": 64}


def _bilinear(grid: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """Sample a (D, H, W) map at (x, y) in [0, 1] of its extent; pixel centres at (i + 0.5) / size, zeros outside."""
    _, height, width = grid.shape
    px, py = x * width - 0.5, y * height - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    total = torch.zeros(grid.shape[0])
    for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
        for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            if 0 <= yy < height and 0 <= xx < width:
                total += wy * wx * grid[:, yy, xx]
    return total


def test_sampling_equals_a_direct_loop_of_bilinear_samples():
    torch.manual_seed(0)
    shapes = [(2, 3), (3, 2)]
    batch, heads, dim, queries, points = 2, 2, 3, 4, 2
    value = torch.randn(batch, sum(h * w for h, w in shapes), heads, dim)
    locations = torch.rand(batch, queries, heads, len(shapes), points, 2) * 1.4 - 0.2  # some outside the map
    weights = torch.rand(batch, queries, heads, len(shapes), points)
    out = deformable_sampling(value, shapes, locations, weights)
    assert out.shape == (batch, queries, heads * dim)
    levels = value.split([h * w for h, w in shapes], dim=1)
    for b in range(batch):
        for q in range(queries):
            for m in range(heads):
                expected = torch.zeros(dim)
                for level, (h, w) in enumerate(shapes):
                    grid = levels[level][b, :, m].T.reshape(dim, h, w)
                    for p in range(points):
                        x, y = locations[b, q, m, level, p].tolist()
                        expected += weights[b, q, m, level, p] * _bilinear(grid, x, y)
                assert torch.allclose(out[b, q, m * dim:(m + 1) * dim], expected, atol=1e-5)


def test_reference_points_are_pixel_centres_on_every_level():
    points = reference_points([(2, 4), (1, 1)], levels=2, device=torch.device("cpu"))
    assert points.shape == (1, 9, 2, 2)
    expected_first_level = [[(x + 0.5) / 4, (y + 0.5) / 2] for y in range(2) for x in range(4)]
    assert torch.allclose(points[0, :8, 0], torch.tensor(expected_first_level))
    assert points[0, 8].tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert torch.equal(points[..., 0, :], points[..., 1, :])


def _decoder(**overrides) -> DeformablePixelDecoder:
    cfg = DeformPixelDecoderConfig(**{**dict(conv_dim=32, mask_dim=24, num_encoder_layers=1, nheads=4), **overrides})
    return DeformablePixelDecoder(cfg, CHANNELS).eval()


def _features(height: int = 64, width: int = 96) -> dict[str, torch.Tensor]:
    return {name: torch.randn(1, c, height // 2 ** (i + 2), width // 2 ** (i + 2))
            for i, (name, c) in enumerate(CHANNELS.items())}


@pytest.mark.parametrize("transformer_in_features, fpn_levels", [(("res3", "res4", "res5"), 1), (("res4", "res5"), 2)])
def test_fpn_reaches_the_common_stride_below_the_encoder_levels(transformer_in_features, fpn_levels):
    decoder = _decoder(transformer_in_features=transformer_in_features)
    keys = decoder.state_dict()
    assert {k.split(".")[0] for k in keys if k.startswith("adapter_")} == {f"adapter_{i + 1}" for i in range(fpn_levels)}
    # The FFN width is the official hard-coded 1024, whatever conv_dim.
    assert keys["transformer.encoder.layers.0.linear1.weight"].shape == (ENCODER_FFN_DIM, 32)
    assert keys["transformer.level_embed"].shape == (len(transformer_in_features), 32)
    with torch.inference_mode():
        mask_features, multi_scale = decoder(_features())
    assert mask_features.shape == (1, 24, 16, 24)
    assert [tuple(x.shape) for x in multi_scale] == [(1, 32, 2, 3), (1, 32, 4, 6), (1, 32, 8, 12)]


def test_runs_in_float32_under_autocast():
    torch.manual_seed(0)
    decoder = _decoder()
    features = _features()
    with torch.inference_mode():
        expected, _ = decoder(features)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mask_features, multi_scale = decoder({k: v.bfloat16() for k, v in features.items()})
    assert mask_features.dtype == torch.float32 and all(x.dtype == torch.float32 for x in multi_scale)
    # Only the bfloat16 rounding of the inputs differs.
    assert torch.allclose(mask_features, expected, atol=0.1)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(in_features=("res2", "res6")), r"in_features \['res6'\] are not backbone outputs"),
        (dict(in_features=("res2", "res3", "res4"), transformer_in_features=("res4", "res5")),
         "transformer_in_features .* must be a non-empty subset of in_features"),
        (dict(conv_dim=33), "conv_dim must be even"),
        (dict(nheads=5), "conv_dim 32 is not a multiple of nheads 5"),
    ],
)
def test_bad_config_is_rejected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        _decoder(**overrides)
