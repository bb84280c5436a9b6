"""Full-size models have exactly the keys and shapes of the released SEEM models.

The manifests in the golden folder list ``GeneralizedSEEM.state_dict()`` of the
official code for each released configuration. Our models are built on the meta
device (no memory) from this project's Hydra model configs and, for SAM-ViT,
also from an official-layout config with the official YAMLs' hyperparameters.
"""
from __future__ import annotations

import copy
import json

import pytest
import torch
import yaml

from conftest import GOLDEN_DIR, ROOT, require_path
from seem_core.checkpoint import IGNORED_KEYS
from seem_core.config import load_config
from seem_core.model import build_model

# Model file -> the official configurations (manifest suffixes) whose checkpoints it loads.
RELEASED = {"focalt": ("demo", "v0", "v1"), "focall": ("demo", "v0", "v1"), "samvitb": ("v1",), "samvitl": ("v1",)}
VIT_SIZES = {"samvitb": "base", "samvitl": "large"}
# What the golden tiny_samvit_v1 config shrinks (its README's table), with the values of the official
# samvitb/samvitl_unicl_lang_v1.yaml; everything else in that file already is the official value.
OFFICIAL_SAMVIT_VALUES = {
    ("MODEL", "DIM_PROJ"): 512,
    ("MODEL", "TEXT", "WIDTH"): 512,
    ("MODEL", "TEXT", "LAYERS"): 12,
    ("MODEL", "TEXT", "HEADS"): 8,
    ("MODEL", "ENCODER", "CONVS_DIM"): 512,
    ("MODEL", "ENCODER", "MASK_DIM"): 512,
    ("MODEL", "ENCODER", "TRANSFORMER_ENC_LAYERS"): 6,
    ("MODEL", "DECODER", "HIDDEN_DIM"): 512,
    ("MODEL", "DECODER", "DIM_FEEDFORWARD"): 2048,
    ("MODEL", "DECODER", "NHEADS"): 8,
    ("MODEL", "DECODER", "DEC_LAYERS"): 10,
    ("MODEL", "DECODER", "SIZE_DIVISIBILITY"): 1024,
}
TINY_VIT_SIZE_KEYS = ("IMAGE_SIZE", "EMBED_DIM", "DEPTH", "NUM_HEADS", "GLOBAL_ATTN_INDEXES", "NECK_OUT_DIMS")


def model_file_architecture(model: str) -> dict:
    return yaml.safe_load((ROOT / f"configs/model/seem_{model}.yaml").read_text())["architecture"]


def official_samvit_config(model: str) -> dict:
    """The official ``samvit?_unicl_lang_v1.yaml`` hyperparameters in the official (upper-case) layout.

    Built from the golden tiny_samvit_v1 ``config.yaml`` (a full official-layout file) with its
    shrunk values put back and ``VIT.SIZE`` set, so the sizes come from the official table.
    """
    tiny = require_path(GOLDEN_DIR / "tiny_samvit_v1" / "config.yaml", "golden SAM-ViT config")
    config = copy.deepcopy(yaml.safe_load(tiny.read_text()))
    for path, value in OFFICIAL_SAMVIT_VALUES.items():
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    vit = config["MODEL"]["BACKBONE"]["VIT"]
    for key in TINY_VIT_SIZE_KEYS:
        del vit[key]
    vit["SIZE"] = VIT_SIZES[model]
    return config


SOURCES = {"model file": model_file_architecture, "official layout": official_samvit_config}
CASES = [
    pytest.param(f"manifest_{model}_unicl_lang_{kind}.json", model, source, id=f"{model}_{kind}-{source}")
    for model, kinds in RELEASED.items() for kind in kinds
    for source in (("model file", "official layout") if model in VIT_SIZES else ("model file",))
]


@pytest.mark.parametrize("manifest_name, model, source", CASES)
def test_full_model_matches_released_manifest(manifest_name: str, model: str, source: str) -> None:
    manifest = json.loads(require_path(GOLDEN_DIR / manifest_name, "SEEM key manifests").read_text())
    with torch.device("meta"):
        built = build_model(SOURCES[source](model))
    ours = {k: list(v.shape) for k, v in built.state_dict().items()}
    theirs = {k: v for k, v in manifest["keys"].items() if k not in IGNORED_KEYS}
    assert sorted(set(theirs) - set(ours)) == [], "keys of the released model we do not have"
    assert sorted(set(ours) - set(theirs)) == [], "keys we have that the released model does not"
    mismatched = {k: (ours[k], theirs[k]) for k in ours if ours[k] != theirs[k]}
    assert mismatched == {}
    assert sum(p.numel() for p in built.parameters()) == manifest["num_params"]


@pytest.mark.parametrize("model", sorted(VIT_SIZES))
def test_samvit_model_files_hold_the_official_hyperparameters(model: str) -> None:
    assert load_config(model_file_architecture(model)) == load_config(official_samvit_config(model))
