"""Model configs of this project -> what the SEEM builder takes (vos.models)."""

import pytest
import yaml

from conftest import ROOT
from seem_core.config import ConfigError, load_config
from vos.models import load_segmenter, model_source


def test_model_file_gives_its_architecture_and_checkpoint():
    config, checkpoint = model_source(ROOT / "configs/model/seem_focalt.yaml")
    assert checkpoint == "seem_focalt_v0.pt"
    built = load_config(config)
    assert built.backbone_name == "focal_dw" and built.backbone.embed_dim == 96 and built.decoder.num_layers == 9


def test_official_yaml_in_the_node_replaces_the_architecture(tmp_path):
    node = yaml.safe_load((ROOT / "configs/model/seem_focall.yaml").read_text())
    node["config"] = str(tmp_path / "official.yaml")
    assert model_source(node) == (str(tmp_path / "official.yaml"), "seem_focall_v0.pt")


def test_a_bare_config_file_is_passed_through(tmp_path):
    path = tmp_path / "arch.yaml"
    path.write_text(yaml.safe_dump({"backbone_name": "focal"}))
    assert model_source(path) == (path, None)


def test_missing_file_and_missing_checkpoint_are_named(tmp_path):
    with pytest.raises(ConfigError, match="nowhere.yaml: model config file not found"):
        model_source(tmp_path / "nowhere.yaml")
    path = tmp_path / "arch.yaml"
    path.write_text(yaml.safe_dump({"backbone_name": "focal"}))
    with pytest.raises(ConfigError, match="arch.yaml: no checkpoint given"):
        load_segmenter(path)
