"""run_vos.py through Hydra: the demo default with a tiny checkpoint, refusals, the missing-checkpoint exit."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_dir

import run_vos
from eval.files import read_label_png, write_label_png
from vos.runner import OutputDirError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from tiny_model import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


def config_for(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def tiny_overrides(tiny_checkpoint, output: Path) -> list[str]:
    config, checkpoint = tiny_checkpoint
    return [f"model.config={config}", f"model.checkpoint={checkpoint}", f"output={output}",
            "short_side=64", "max_frames=4"]


def test_demo_default_runs_and_refuses_a_different_rerun(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "demo"
    summary = run_vos.run(config_for(tiny_overrides(tiny_checkpoint, out)))
    assert "J&F-Mean" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "masks").glob("*.png")) == [f"{i:05d}.png" for i in range(4)]
    np.testing.assert_array_equal(read_label_png(out / "masks/00000.png"),
                                  read_label_png(out / "clip/Annotations/00000.png"))
    assert (out / "overlay.mp4").is_file() and summary.metrics is not None
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["propagation"]["memory"] == "first" and saved["input"] == str(out / "clip/JPEGImages")
    assert json.loads((out / "summary.json").read_text())["frames"] == 4

    before = {p: p.stat().st_mtime_ns for p in (out / "masks").iterdir()}
    changed = tiny_overrides(tiny_checkpoint, out) + ["propagation.memory=first+previous"]
    with pytest.raises(OutputDirError, match="propagation"):
        run_vos.run(config_for(changed))
    assert {p: p.stat().st_mtime_ns for p in (out / "masks").iterdir()} == before


def test_missing_checkpoint_stops_before_any_work(tmp_path):
    out = tmp_path / "never"
    missing = tmp_path / "nowhere" / "seem.pt"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, str(ROOT / "run_vos.py"), f"output={out}",
                             f"model.checkpoint={missing}"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(missing) in result.stderr and "model.checkpoint" in result.stderr
    assert not out.exists()
    assert not {"outputs", ".hydra", "run_vos.log"} & set(os.listdir(tmp_path))  # Hydra left nothing in cwd


def test_released_checkpoint_offline_names_the_download(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, str(ROOT / "run_vos.py"), f"output={tmp_path / 'out'}"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "https://huggingface.co/xdecoder/SEEM/resolve/main/seem_focalt_v0.pt" in result.stderr
    assert "model.checkpoint=" in result.stderr
    assert not (tmp_path / "out").exists()


def test_demo_into_a_foreign_folder_writes_nothing_there(tiny_checkpoint, tmp_path):
    out = tmp_path / "other"
    write_label_png(out / "blackswan" / "00000.png", np.ones((4, 4), np.uint8))
    with pytest.raises(OutputDirError, match="not empty"):
        run_vos.run(config_for(tiny_overrides(tiny_checkpoint, out)))
    assert sorted(p.name for p in out.iterdir()) == ["blackswan"]  # no demo clip made in it


def test_ctrl_c_ends_with_a_short_message_and_no_traceback(tiny_checkpoint, tmp_path):
    script = ("import runpy, vos.runner\n"
              "def interrupted(*args, **kwargs):\n"
              "    raise KeyboardInterrupt\n"
              "vos.runner.segment_video = interrupted\n"
              f"runpy.run_path({str(ROOT / 'run_vos.py')!r}, run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", script, *tiny_overrides(tiny_checkpoint, tmp_path / "out")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 130
    assert "interrupted" in result.stderr and "resume" in result.stderr and "Traceback" not in result.stderr
