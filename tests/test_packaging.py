"""A non-editable install works from any directory: configs ship inside the package, console commands exist."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project built as a wheel and installed (without dependencies) into a folder of its own."""
    build = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(build), str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = build.glob("seem_vos-*.whl")
    target = build / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return target


def test_installed_package_runs_the_demo_from_another_directory(installed, tmp_path):
    names = {str(p.relative_to(installed)) for p in installed.rglob("*.yaml")}
    assert {"vos/configs/config.yaml", "vos/configs/model/seem_tiny_random.yaml",
            "vos/configs/dataset/davis2017.yaml"} <= names
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = {**os.environ, "PYTHONPATH": str(installed), "HF_HUB_OFFLINE": "1"}
    where = subprocess.run([sys.executable, "-c", "import vos, run_vos; print(vos.__file__, run_vos.__file__)"],
                           cwd=elsewhere, env=environment, capture_output=True, text=True, check=True)
    assert all(path.startswith(str(installed)) for path in where.stdout.split()), where.stdout
    script = installed / "bin" / "seem-vos"
    result = subprocess.run([sys.executable, str(script), "model=seem_tiny_random", "short_side=64", "output=out"],
                            cwd=elsewhere, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "J&F-Mean" in result.stdout and len(list((elsewhere / "out/masks").glob("*.png"))) > 0
