"""A small seeded SEEM checkpoint for end-to-end runs on CPU in seconds.

The architecture has the shape of the golden ``tiny_*`` variants (every SEEM
module present, tiny widths); the weights are random but reproducible
(``torch.manual_seed``), so two builds give the same file and runs are
deterministic. Not for accuracy: only for exercising the pipeline.
"""
from __future__ import annotations

from pathlib import Path

import torch
import yaml

TINY_ARCHITECTURE = {
    "backbone_name": "focal",
    "pixel_decoder_name": "transformer_encoder_fpn",
    "decoder_name": "seem_demo",
    "dim_proj": 64,
    "backbone": {"embed_dim": 32, "depths": [1, 1, 2, 1], "focal_levels": [4, 4, 4, 4],
                 "focal_windows": [3, 3, 3, 3]},
    "text": {"width": 64, "layers": 2, "heads": 2},
    "pixel_decoder": {"conv_dim": 64, "mask_dim": 64, "num_encoder_layers": 2, "nheads": 8,
                      "dim_feedforward": 128},
    "decoder": {"hidden_dim": 64, "nheads": 8, "dim_feedforward": 128, "num_layers": 3},
}


def make_tiny_checkpoint(directory: str | Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``tiny_seem.yaml`` (our Hydra ``architecture`` layout) and ``tiny_seem.pt``; return both paths."""
    from seem_core.model import build_model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "tiny_seem.yaml"
    checkpoint_path = directory / "tiny_seem.pt"
    config_path.write_text(yaml.safe_dump(TINY_ARCHITECTURE, sort_keys=False))
    torch.manual_seed(seed)
    torch.save(build_model(TINY_ARCHITECTURE).state_dict(), checkpoint_path)
    return config_path, checkpoint_path
