"""Model configuration errors (seem_core.config)."""
from __future__ import annotations

import pytest
import yaml

from conftest import GOLDEN_DIR, require_path
from seem_core.config import ConfigError, load_config


def test_official_yaml_missing_a_nested_key_names_the_file_and_the_key(tmp_path):
    source = require_path(GOLDEN_DIR / "tiny_focaldw_demo" / "config.yaml", "golden official config")
    official = yaml.safe_load(source.read_text())
    del official["MODEL"]["BACKBONE"]["FOCAL"]["EMBED_DIM"]
    path = tmp_path / "official.yaml"
    path.write_text(yaml.safe_dump(official))
    with pytest.raises(ConfigError, match=r"official\.yaml: not an official SEEM config: missing key 'EMBED_DIM'"):
        load_config(path)


def test_official_yaml_without_a_section_is_rejected(tmp_path):
    path = tmp_path / "partial.yaml"
    path.write_text(yaml.safe_dump({"MODEL": {"BACKBONE": {"NAME": "focal"}}}))
    with pytest.raises(ConfigError, match=r"partial\.yaml: not an official SEEM config: missing key 'TEXT'"):
        load_config(path)


def _official_samvit() -> dict:
    source = require_path(GOLDEN_DIR / "tiny_samvit_v1" / "config.yaml", "golden official config")
    return yaml.safe_load(source.read_text())


def test_official_vit_size_keys_are_read_for_a_size_outside_the_table():
    official = _official_samvit()
    vit = official["MODEL"]["BACKBONE"]["VIT"]
    cfg = load_config(official)
    assert (cfg.backbone.image_size, cfg.backbone.depth, cfg.backbone.global_attn_indexes) == (
        vit["IMAGE_SIZE"], vit["DEPTH"], tuple(vit["GLOBAL_ATTN_INDEXES"]))
    del vit["DEPTH"]
    with pytest.raises(ConfigError, match=r"VIT.SIZE = 'tiny' is not one of base, large, huge.*"
                                          r"missing key MODEL.BACKBONE.VIT.DEPTH"):
        load_config(official)


def test_official_vit_size_key_contradicting_the_table_is_refused():
    official = _official_samvit()
    official["MODEL"]["BACKBONE"]["VIT"]["SIZE"] = "base"
    with pytest.raises(ConfigError, match=r"MODEL.BACKBONE.VIT.IMAGE_SIZE = 320 contradicts .*'base' \(which means 1024\)"):
        load_config(official)


def test_vit_input_must_be_padded_to_its_image_size():
    official = _official_samvit()
    official["MODEL"]["DECODER"]["SIZE_DIVISIBILITY"] = 32
    with pytest.raises(ConfigError, match=r"MODEL.DECODER.SIZE_DIVISIBILITY\) = 32 must equal the ViT image size 320"):
        load_config(official)


@pytest.mark.parametrize(
    "layout, message",
    [
        ({"backbone_name": "vit", "backbone": {"depths": [2, 2]}}, r"unknown key\(s\) in model.backbone: depths"),
        ({"backbone_name": "swin"}, "model.backbone_name = 'swin' is not implemented; supported: focal, focal_dw, vit"),
        ({"pixel_decoder_name": "transformer_encoder_deform", "pixel_decoder": {"dim_feedforward": 2048}},
         r"unknown key\(s\) in model.pixel_decoder: dim_feedforward"),
    ],
)
def test_lower_case_layout_rejects_keys_of_another_part(layout, message):
    with pytest.raises(ConfigError, match=message):
        load_config(layout)
