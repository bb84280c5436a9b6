"""Checkpoint resolution and strict loading (seem_core.checkpoint)."""
from __future__ import annotations

import socket

import pytest
import torch
from torch import nn

import seem_core.checkpoint as checkpoint
from seem_core.checkpoint import (CheckpointError, CheckpointNotFoundError, load_checkpoint, read_state_dict,
                                  resolve_checkpoint)


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))


def save(tmp_path, state_dict, name="ckpt.pt"):
    path = tmp_path / name
    torch.save(state_dict, path)
    return path


def test_strict_load_copies_every_tensor(tmp_path):
    source, target = small_model(), small_model()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1.0)
    report = load_checkpoint(target, save(tmp_path, source.state_dict()))
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    assert report.missing == report.unexpected == report.mismatched == []


def test_mismatch_lists_missing_unexpected_and_shapes_and_leaves_model_untouched(tmp_path):
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = dict(model.state_dict())
    del state["2.bias"]
    state["0.weight"] = torch.zeros(5, 3)
    for i in range(7):
        state[f"extra.{i}"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(model, save(tmp_path, state))
    message = str(err.value)
    assert "ckpt.pt" in message
    assert "1 missing keys: 2.bias" in message
    assert "7 unexpected keys: extra.0" in message and "(2 more)" in message
    assert "1 shape mismatches: 0.weight (5, 3) vs model (4, 3)" in message
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), f"{key} changed by a failed strict load"


def test_non_strict_loads_what_fits_and_reports_the_rest(tmp_path):
    model, source = small_model(), small_model()
    with torch.no_grad():
        source[1].weight.fill_(3.0)
    state = dict(source.state_dict())
    state["0.weight"] = torch.zeros(9, 9)
    report = load_checkpoint(model, save(tmp_path, state), strict=False)
    assert torch.equal(model[1].weight, torch.full((4,), 3.0))
    assert not torch.equal(model[0].weight, torch.zeros(4, 3))
    assert report.mismatched == ["0.weight (9, 9) vs model (4, 3)"]


def test_training_wrapper_prefix_and_criterion_buffer_are_handled(tmp_path):
    model = small_model()
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    state["module.criterion.empty_weight"] = torch.ones(134)
    report = load_checkpoint(small_model(), save(tmp_path, state))
    assert report.ignored == ["criterion.empty_weight"]


def test_wrapped_and_unreadable_files(tmp_path):
    model = small_model()
    wrapped = save(tmp_path, {"model": model.state_dict()}, "wrapped.pt")
    assert set(read_state_dict(wrapped)) == set(model.state_dict())
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt: cannot read checkpoint"):
        read_state_dict(bad)
    with pytest.raises(CheckpointError, match="not a state dict of tensors"):
        read_state_dict(save(tmp_path, {"a": 1}, "scalars.pt"))


def test_resolve_prefers_a_local_file(tmp_path):
    path = save(tmp_path, {}, "seem_focalt_v1.pt")
    assert resolve_checkpoint(path) == path


def test_resolve_unknown_name_says_what_to_set(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match=r"not a local file.*Set model\.checkpoint"):
        resolve_checkpoint(tmp_path / "nowhere.pt")


def test_released_name_goes_to_the_hub_and_a_failed_download_names_the_file(monkeypatch):
    calls = []

    def broken(repo_id, filename, local_files_only=False):
        calls.append((repo_id, filename, local_files_only))
        raise OSError("We couldn't connect to the hub")

    monkeypatch.setattr("huggingface_hub.hf_hub_download", broken)
    monkeypatch.setattr(checkpoint, "hub_unreachable", lambda endpoint: None)
    with pytest.raises(CheckpointNotFoundError) as err:
        resolve_checkpoint("seem_focall_v1.pt", config_key="model.checkpoint")
    assert calls == [(checkpoint.HUB_REPO, "seem_focall_v1.pt", True), (checkpoint.HUB_REPO, "seem_focall_v1.pt", False)]
    message = str(err.value)
    assert f"/{checkpoint.HUB_REPO}/resolve/main/seem_focall_v1.pt" in message
    assert "model.checkpoint=/path/to/seem_focall_v1.pt" in message


def test_unreachable_hub_fails_at_once_without_a_download_attempt(monkeypatch):
    calls = []

    def cache_miss(repo_id, filename, local_files_only=False):
        calls.append(local_files_only)
        raise OSError("not cached" if local_files_only else "went online")

    monkeypatch.setattr("huggingface_hub.hf_hub_download", cache_miss)
    monkeypatch.setattr(checkpoint, "hub_unreachable", lambda endpoint: "huggingface.co is unreachable: no route")
    with pytest.raises(CheckpointNotFoundError, match=r"huggingface.co is unreachable.*set ckpt=/path/to/seem_focalt_v0.pt"):
        resolve_checkpoint("seem_focalt_v0.pt", config_key="ckpt")
    assert calls == [True]


def test_hub_unreachable_says_why_for_a_closed_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]  # bound but not listening: connections are refused
        assert "127.0.0.1 is unreachable" in checkpoint.hub_unreachable(f"http://127.0.0.1:{port}")


def test_hub_reference_uses_the_cache_without_going_online(monkeypatch, tmp_path):
    cached = save(tmp_path, {}, "weights.pt")
    calls = []

    def cache_only(repo_id, filename, local_files_only=False):
        calls.append((repo_id, filename, local_files_only))
        if not local_files_only:
            raise AssertionError("went online for a cached file")
        return str(cached)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", cache_only)
    assert resolve_checkpoint("hf://someone/models/sub/weights.pt") == cached
    assert calls == [("someone/models", "sub/weights.pt", True)]
    with pytest.raises(CheckpointError, match="expected hf://owner/repo/path/to/file"):
        resolve_checkpoint("hf://only-owner")
