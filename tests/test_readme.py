"""The README's snippets run as written (with the tiny random model, so nothing is downloaded)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def test_the_first_two_lines_are_the_setup_commands():
    first = blocks("bash")[0].splitlines()
    assert first[0].startswith("python3 -m venv .venv") and first[0].endswith("python run_vos.py")
    assert first[1].startswith("python3 -m venv .venv") and first[1].endswith("python -m pytest")


def test_python_snippets_run_as_written(tmp_path, monkeypatch, capsys):
    snippets = [block for block in blocks("python") if "vos.load(" in block]
    assert len(snippets) >= 3 and all("seem_tiny_random" in block for block in snippets)
    monkeypatch.chdir(tmp_path)
    for n, snippet in enumerate(snippets):
        exec(compile(snippet, f"README.md python block {n}", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("0 (") and len(printed) > 2  # one line per streamed frame, then the saved track
    assert sorted(p.name for p in (tmp_path / "outputs/api_demo/masks").glob("*.png"))[:1] == ["00000.png"]
    assert printed[-2] == "[1, 2]"  # the objects named by the text snippet
    assert printed[-1] == "12 [1]"  # the interactive snippet: propagation from the correction, object 2 removed
    assert len(list((tmp_path / "outputs/text_demo/masks").glob("*.png"))) == 24


@pytest.mark.skipif(shutil.which("seem-vos") is None, reason="the seem-vos command is not installed in this environment")
def test_try_it_commands_run_as_written(tmp_path):
    (block,) = [block for block in blocks("bash") if "model=seem_tiny_random" in block]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for command in commands:
        args = command.split()
        if args[0] == "python":
            args[0] = sys.executable
            args[1] = str(ROOT / args[1])
        result = subprocess.run(args, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (command, result.stderr)
    assert (tmp_path / "outputs/tiny/masks").is_dir() and (tmp_path / "outputs/tiny/summary.json").is_file()
