"""The SAM ViT backbone's own behaviour (its golden comparison is in tests/test_golden_backbone.py)."""
from __future__ import annotations

import pytest
import torch

from seem_core.config import ConfigError, ViTConfig
from seem_core.vit import Block, SAMViT, decomposed_rel_pos_bias, relative_position_table


def _tiny(**overrides) -> ViTConfig:
    base = dict(image_size=96, embed_dim=16, depth=2, num_heads=2, global_attn_indexes=(1,),
                neck_out_dims=(4, 8, 16, 32))
    return ViTConfig(**{**base, **overrides})


def test_relative_position_table_indexes_by_offset():
    # Rows of the learned table are offsets -2..2 (size 3); entry [i, j] is the row of offset i - j.
    table = torch.arange(5.0)[:, None]
    rows = relative_position_table(table, 3)[..., 0]
    assert rows.tolist() == [[2, 1, 0], [3, 2, 1], [4, 3, 2]]
    with pytest.raises(ValueError, match="length 5 for 4 positions"):
        relative_position_table(table, 4)


def test_decomposed_bias_is_one_term_per_row_offset_and_one_per_column_offset():
    torch.manual_seed(0)
    h, w, dim = 2, 3, 4
    q = torch.randn(1, 2, h * w, dim)
    rel_h, rel_w = torch.randn(2 * h - 1, dim), torch.randn(2 * w - 1, dim)
    bias = decomposed_rel_pos_bias(q, rel_h, rel_w, (h, w))
    assert bias.shape == (1, 2, h * w, h * w)
    for head in range(2):
        for i in range(h):
            for j in range(w):
                for k in range(h):
                    for m in range(w):
                        query = q[0, head, i * w + j]
                        expected = query @ rel_h[i - k + h - 1] + query @ rel_w[j - m + w - 1]
                        assert torch.allclose(bias[0, head, i * w + j, k * w + m], expected, atol=1e-5)


def test_windowed_block_attends_inside_its_window_only():
    # 20 x 20 tokens in 14 x 14 windows: token (0, 0) is in the first window, (19, 19) in the last.
    torch.manual_seed(0)
    block = Block(dim=8, num_heads=2, window=14, grid_size=20).eval()
    x = torch.randn(1, 20, 20, 8)
    changed = x.clone()
    changed[0, 19, 19] += 1.0
    with torch.inference_mode():
        before, after = block(x), block(changed)
    moved = (after - before).abs().amax(-1)[0]
    assert moved[:14, :14].max() == 0  # first window untouched
    assert moved[19, 19] > 0 and moved[14:, 14:].max() > 0
    global_block = Block(dim=8, num_heads=2, window=0, grid_size=20).eval()
    with torch.inference_mode():  # a global block reaches the first window too
        assert (global_block(changed) - global_block(x)).abs()[0, :14, :14].max() > 0


def test_rel_pos_tables_cover_the_window_or_the_whole_grid():
    vit = SAMViT(_tiny())
    assert vit.pos_embed.shape == (1, 6, 6, 16)
    assert vit.blocks[0].attn.rel_pos_h.shape == (27, 8)  # windowed: 2 * 14 - 1
    assert vit.blocks[1].attn.rel_pos_h.shape == (11, 8)  # global: 2 * 6 - 1


def test_outputs_are_the_requested_strides_and_channels():
    # 96 / 16 = 6 tokens per side, padded to one 14 x 14 window in block 0.
    vit = SAMViT(_tiny(out_features=("res2", "res5"))).eval()
    assert vit.out_channels == {"res2": 4, "res5": 32}
    with torch.inference_mode():
        features = vit(torch.randn(2, 3, 96, 96))
    assert {k: tuple(v.shape) for k, v in features.items()} == {"res2": (2, 4, 24, 24), "res5": (2, 32, 3, 3)}


def test_input_of_another_size_is_refused():
    vit = SAMViT(_tiny())
    with pytest.raises(ValueError, match=r"takes \(B, 3, 96, 96\) images .* got shape \(1, 3, 96, 128\)"):
        vit(torch.zeros(1, 3, 96, 128))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(image_size=100), "image_size 100 is not a positive multiple of the patch size 16"),
        (dict(num_heads=3), "embed_dim 16 is not a positive multiple of num_heads 3"),
        (dict(global_attn_indexes=(2,)), r"global_attn_indexes \[2\] outside the 2 blocks"),
        (dict(neck_out_dims=(4, 8, 16)), "neck_out_dims has 3 entries"),
        (dict(out_features=("res6",)), "out_features"),
    ],
)
def test_invalid_config_is_rejected_with_the_reason(overrides, message):
    with pytest.raises(ConfigError, match=message):
        SAMViT(_tiny(**overrides))
