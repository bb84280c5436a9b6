"""executor=ray: the same masks and scores as a local run, byte for byte, and a killed worker costs nothing.

These start a local Ray cluster, which takes a minute or more on the 2-core development
machine, so they are marked ``ray`` and left out by default: ``pytest -m ray`` runs them. They run
the tiny random SEEM on an LVOS-like fixture: two DAVIS sequences, every frame's ground
truth, a second object from frame 10.
"""
from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

import vos
from eval.datasets import FolderLayout
from test_datasets_runs import SEQUENCES, make_folder
from vos.benchmark import run_benchmark
from vos.errors import SettingsError
from vos.settings import ExecutorSettings, run_settings

TINY = {"short_side": 128}  # large enough that a different CPU thread count in the workers changes the masks


def run_with(executor: ExecutorSettings | None, layout: FolderLayout, out: Path, make_tracker=None) -> dict:
    tracker = vos.load("seem_tiny_random", **TINY)
    return run_benchmark(tracker, layout, out, executor=executor, make_tracker=make_tracker)


def same_numbers(a: dict, b: dict) -> bool:
    """Equal results, NaN included (a Decay of too few frames is NaN in both)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


class DiesOnce:
    """Loads the tiny model; the first worker to reach its 3rd frame kills its own process (once, ever)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __call__(self):
        tracker = vos.load("seem_tiny_random", **TINY)
        encode, seen, marker = tracker.segmenter.encode_frame, [0], self.marker

        def encode_frame(frame):
            seen[0] += 1
            if seen[0] == 3 and not marker.exists():
                marker.touch()
                os._exit(1)  # as a lost node or an OOM kill: no exception, no cleanup
            return encode(frame)

        tracker.segmenter.encode_frame = encode_frame
        return tracker


@pytest.fixture(scope="module")
def ray_cluster():
    """One local cluster for the module's runs (each run would start and stop its own)."""
    ray = pytest.importorskip("ray")
    from vos.ray_executor import start

    start(None)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def lvos_like(davis_root, tmp_path_factory):
    base = make_folder(davis_root, tmp_path_factory.mktemp("lvos") / "valid", n_frames=12, full_ground_truth=True)
    return FolderLayout(base.parent, split="valid", ground_truth=True)


@pytest.fixture(scope="module")
def local_run(lvos_like, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    return out, run_with(None, lvos_like, out)


@pytest.mark.ray
def test_two_ray_workers_write_the_local_run_byte_for_byte(ray_cluster, lvos_like, local_run, tmp_path):
    local_out, local_results = local_run
    executor = ExecutorSettings("ray", None, num_workers=2, gpus_per_worker=0, max_attempts=1)
    results = run_with(executor, lvos_like, tmp_path / "ray", functools.partial(vos.load, "seem_tiny_random", **TINY))
    assert files(tmp_path / "ray") == files(local_out) and len(files(local_out)) == 12 * len(SEQUENCES)
    assert same_numbers(results["per_object"], local_results["per_object"])
    assert same_numbers(results["global"], local_results["global"]) and 0 < local_results["global"]["J&F-Mean"] < 1


@pytest.mark.ray
def test_a_killed_worker_sequence_is_tracked_again_elsewhere(ray_cluster, lvos_like, local_run, tmp_path):
    local_out, local_results = local_run
    marker = tmp_path / "a-worker-died"
    executor = ExecutorSettings("ray", None, num_workers=2, gpus_per_worker=0, max_attempts=2)
    results = run_with(executor, lvos_like, tmp_path / "ray", DiesOnce(marker))
    assert marker.exists()  # a worker did die mid-sequence
    assert files(tmp_path / "ray") == files(local_out)
    assert same_numbers(results["global"], local_results["global"])


def test_executor_ray_without_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with initialize_config_module("vos.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["executor=ray", "dataset=folder", "dataset.root=/x"])
    with pytest.raises(SettingsError, match=r'executor=ray needs Ray.*pip install -e "\.\[ray\]"'):
        run_settings(cfg, "folder")


@pytest.mark.ray
def test_run_vos_with_executor_ray(ray_cluster, lvos_like, local_run, tmp_path):
    """The command line's way in: the model node, device and propagation reach the workers unchanged."""
    import run_vos

    local_out, local_results = local_run
    overrides = ["dataset=lvos", f"dataset.root={lvos_like.root}", f"output={tmp_path / 'out'}", "executor=ray",
                 "executor.num_workers=2", "model=seem_tiny_random", f"short_side={TINY['short_side']}"]
    with initialize_config_module("vos.configs", version_base="1.3"):
        results = run_vos.run(compose(config_name="config", overrides=overrides))
    assert files(tmp_path / "out") == files(local_out)
    assert same_numbers(results["global"], local_results["global"])
