"""The demo notebook: committed without outputs, and it runs end to end on a tiny model."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "demo.ipynb"
KERNEL_NAME = "seem-vos-test"
NUM_FRAMES = 6


def test_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells
    for index, cell in enumerate(code_cells):
        assert cell.outputs == [], f"code cell {index} has saved outputs"
        assert cell.execution_count is None, f"code cell {index} has an execution count"


def kernel_of_this_python(directory: Path) -> KernelManager:
    """A kernel manager whose only kernel runs ``sys.executable`` (the test's venv), never a system Python."""
    spec_dir = directory / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "seem-vos test", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(directory)]))


def outputs_of(cell) -> str:
    return "".join(output.get("text", "") for output in cell.outputs)


def test_notebook_runs_on_the_demo_clip(tmp_path, monkeypatch):
    monkeypatch.setenv("SEEM_VOS_MODEL", "seem_tiny_random")
    monkeypatch.setenv("SEEM_VOS_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("SEEM_VOS_DEMO_FRAMES", str(NUM_FRAMES))
    monkeypatch.setenv("SEEM_VOS_DEVICE", "cpu")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, km=kernel_of_this_python(tmp_path / "kernels"), timeout=300,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()

    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [output for cell in code_cells for output in cell.outputs if output.output_type == "error"]
    assert errors == []
    printed = "".join(outputs_of(cell) for cell in code_cells)
    assert "J&F-Mean over objects" in printed
    for object_id in (1, 2, 3):
        assert f"object {object_id}: J" in printed
    pictures = [output for cell in code_cells for output in cell.outputs if "image/png" in output.get("data", {})]
    # clip grid, prediction grid, J/F plot, two track plots, the correction's before/after and its J/F plot
    assert len(pictures) == 7
    assert "click at (x, y)" in printed and "before" in printed and "after" in printed
    videos = [output for cell in code_cells for output in cell.outputs if "<video" in output.get("data", {}).get("text/html", "")]
    assert len(videos) == 1
    assert len(list((tmp_path / "out" / "run" / "masks").glob("*.png"))) == NUM_FRAMES
