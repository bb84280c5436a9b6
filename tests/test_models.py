"""The model registry (vos.models): names -> architecture + checkpoint, shipped inside the package."""

import pytest
import torch
import yaml

from conftest import ROOT
from seem_core.config import ConfigError, load_config
from vos.models import load_segmenter, model_names, model_spec


def test_registry_lists_the_shipped_model_files():
    assert model_names() == sorted(p.stem for p in (ROOT / "configs/model").glob("*.yaml"))
    assert {"seem_focalt", "seem_focall", "seem_focalt_v1", "seem_focall_v1", "seem_tiny_random"} <= set(model_names())


def test_registry_name_gives_architecture_and_released_checkpoint():
    spec = model_spec("seem_focalt")
    assert spec.checkpoint == "seem_focalt_v0.pt" and spec.name == "seem_focalt"
    built = load_config(spec.architecture)
    assert built.backbone_name == "focal_dw" and built.backbone.embed_dim == 96 and built.decoder.num_layers == 9


def test_v1_entry_inherits_the_v0_architecture_and_changes_only_what_it_says():
    v0, v1 = model_spec("seem_focall"), model_spec("seem_focall_v1")
    assert v1.checkpoint == "seem_focall_v1.pt"
    assert v1.architecture["decoder_name"] == "seem_v1"
    assert {**v0.architecture, "decoder_name": "seem_v1"} == v1.architecture


def test_official_yaml_in_the_node_replaces_the_architecture(tmp_path):
    node = yaml.safe_load((ROOT / "configs/model/seem_focall.yaml").read_text())
    node["config"] = str(tmp_path / "official.yaml")
    spec = model_spec(node)
    assert (spec.architecture, spec.checkpoint) == (str(tmp_path / "official.yaml"), "seem_focall_v0.pt")


def test_a_bare_config_file_is_the_architecture_and_an_explicit_checkpoint_wins(tmp_path):
    path = tmp_path / "arch.yaml"
    path.write_text(yaml.safe_dump({"backbone_name": "focal"}))
    spec = model_spec(path, "weights.pt")
    assert (spec.architecture, spec.checkpoint) == (path, "weights.pt")


def test_unknown_name_missing_file_and_missing_checkpoint_are_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown model 'seem_nope'.*seem_focalt"):
        model_spec("seem_nope")
    with pytest.raises(ConfigError, match="nowhere.yaml: model config file not found"):
        model_spec(tmp_path / "nowhere.yaml")
    path = tmp_path / "arch.yaml"
    path.write_text(yaml.safe_dump({"backbone_name": "focal"}))
    with pytest.raises(ConfigError, match="arch.yaml: no checkpoint given"):
        model_spec(path)


def test_random_weights_are_seeded_and_do_not_touch_the_global_generator():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = load_segmenter(model_spec("seem_tiny_random"))
    assert torch.equal(torch.random.get_rng_state(), before)
    b = load_segmenter(model_spec("seem_tiny_random"))
    for (key, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), key
