"""Full-size models have exactly the keys and shapes of the released SEEM models.

The manifests in the golden folder list ``GeneralizedSEEM.state_dict()`` of the
official code for each released configuration. Our models are built on the meta
device (no memory) from this project's Hydra model configs.
"""
from __future__ import annotations

import json

import pytest
import torch
import yaml

from conftest import GOLDEN_DIR, ROOT, require_path
from seem_core.checkpoint import IGNORED_KEYS
from seem_core.model import build_model

MODEL_CONFIGS = {"focalt": ROOT / "configs/model/seem_focalt.yaml", "focall": ROOT / "configs/model/seem_focall.yaml"}
RELEASED = [f"manifest_{size}_unicl_lang_{kind}.json" for size in MODEL_CONFIGS for kind in ("demo", "v0", "v1")]


def meta_model(size: str):
    architecture = yaml.safe_load(MODEL_CONFIGS[size].read_text())["architecture"]
    with torch.device("meta"):
        return build_model(architecture)


@pytest.mark.parametrize("manifest_name", RELEASED)
def test_full_model_matches_released_manifest(manifest_name: str) -> None:
    manifest = json.loads(require_path(GOLDEN_DIR / manifest_name, "SEEM key manifests").read_text())
    size = manifest_name.split("_")[1]
    model = meta_model(size)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: v for k, v in manifest["keys"].items() if k not in IGNORED_KEYS}
    assert sorted(set(theirs) - set(ours)) == [], "keys of the released model we do not have"
    assert sorted(set(ours) - set(theirs)) == [], "keys we have that the released model does not"
    mismatched = {k: (ours[k], theirs[k]) for k in ours if ours[k] != theirs[k]}
    assert mismatched == {}
    assert sum(p.numel() for p in model.parameters()) == manifest["num_params"]
