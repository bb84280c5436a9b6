"""Frame sizes through preprocessing, and the SAM-ViT rule: longer side capped, padded to the ViT's square."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seem_core.model import build_model
from seem_core.preprocess import frame_geometry, resized_size
from seem_core.segmenter import SEEMSegmenter


@pytest.mark.parametrize(
    "size, short_side, max_side, expected",
    [
        ((480, 854), 512, None, (512, 910)),  # the demo: int(512 * 854 / 480) = 910
        ((854, 480), 512, None, (910, 512)),
        ((480, 854), 512, 1024, (512, 910)),  # within the cap: unchanged
        ((192, 256), 240, 320, (240, 320)),  # exactly at the cap
        # 1000 / 1024, the official SAM-ViT evaluation: 1779 > 1024, so int(1024 * 1000 / 1779) = 575.
        ((480, 854), 1000, 1024, (575, 1024)),
        ((854, 480), 1000, 1024, (1024, 575)),
        ((300, 300), 1000, 1024, (1000, 1000)),
    ],
)
def test_resized_size(size, short_side, max_side, expected):
    assert resized_size(*size, short_side, max_side) == expected


def test_sam_vit_frames_are_padded_to_the_square_input():
    geometry = frame_geometry(480, 854, 1000, divisibility=1024, max_side=1024)
    assert geometry.resized == (575, 1024) and geometry.padded == (1024, 1024)


def test_a_short_side_the_cap_cannot_honour_is_refused():
    with pytest.raises(ValueError, match="short_side 1024 must be smaller than 1024, the fixed input size"):
        resized_size(480, 854, 1024, 1024)


TINY_SAM_VIT = {
    "backbone_name": "vit",
    "pixel_decoder_name": "transformer_encoder_deform",
    "decoder_name": "seem_v1",
    "dim_proj": 32,
    "backbone": {"image_size": 160, "embed_dim": 32, "depth": 2, "num_heads": 2, "global_attn_indexes": [1],
                 "neck_out_dims": [8, 16, 32, 64]},
    "text": {"width": 32, "layers": 1, "heads": 2},
    "pixel_decoder": {"conv_dim": 32, "mask_dim": 32, "num_encoder_layers": 1, "nheads": 4},
    "decoder": {"hidden_dim": 32, "nheads": 4, "dim_feedforward": 64, "num_layers": 1},
    "size_divisibility": 160,
}


def test_segmenter_runs_a_sam_vit_model_on_any_frame_shape():
    torch.manual_seed(0)
    segmenter = SEEMSegmenter(build_model(TINY_SAM_VIT), short_side=80)
    frame = np.random.default_rng(0).integers(0, 256, (100, 400, 3), dtype=np.uint8)
    masks = np.zeros((2, 100, 400), dtype=bool)
    masks[0, 20:60, 50:150] = masks[1, 40:90, 250:390] = True
    encoded = segmenter.encode_frame(frame)
    # Short side 80 would make the long side 320 > 160: capped to 160, the short side to int(160 * 80 / 320).
    assert encoded.geometry.resized == (40, 160) and encoded.geometry.padded == (160, 160)
    result = segmenter.segment(frame, segmenter.encode_reference(encoded, masks, torch.Generator().manual_seed(0)))
    assert result.logits.shape == (2, 100, 400)
    with pytest.raises(ValueError, match="short_side 160 must be smaller than 160"):
        SEEMSegmenter(segmenter.model, short_side=160)
