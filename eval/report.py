"""Evaluation reports: the toolkit's two CSVs and printed tables, and a full-precision JSON.

The CSVs match what ``davis2017-evaluation`` writes with pandas (``to_csv(index=False,
float_format="%.3f")``) byte for byte, and the tables match its ``to_string(index=False)``
output, without importing pandas.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from eval.davis import GLOBAL_METRICS
from eval.files import atomic_writer

SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")
TABLE_DECIMALS = 6


def _csv_text(header: tuple[str, ...], rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([v if isinstance(v, str) else ("" if math.isnan(v) else f"{v:.3f}") for v in row])
    return buffer.getvalue()


def global_csv(results: dict) -> str:
    """``global_results-<set>.csv`` content."""
    return _csv_text(GLOBAL_METRICS, [[results["global"][name] for name in GLOBAL_METRICS]])


def _per_object_rows(results: dict) -> list[list]:
    return [[name, obj["J-Mean"], obj["F-Mean"]] for name, obj in results["per_object"].items()]


def per_sequence_csv(results: dict) -> str:
    """``per-sequence_results-<set>.csv`` content: one row per object, named ``<seq>_<id>``."""
    return _csv_text(SEQUENCE_COLUMNS, _per_object_rows(results))


def _float_column(values: list[float]) -> list[str]:
    """Six decimals, trailing zeros trimmed while every value in the column has one (pandas)."""
    texts = ["NaN" if math.isnan(v) else f"{v:.{TABLE_DECIMALS}f}" for v in values]
    numbers = [t for t in texts if t != "NaN"]
    while numbers and all(t.endswith("0") and not t.endswith(".0") for t in numbers):
        numbers = [t[:-1] for t in numbers]
        texts = [t if t == "NaN" else t[:-1] for t in texts]
    return texts


def _table(columns: list[tuple[str, list, bool]]) -> str:
    """Right-aligned columns separated by one space; numeric headers get a sign space, as in pandas."""
    cells = []
    for name, values, numeric in columns:
        column = [(" " + name) if numeric else name] + (_float_column(values) if numeric else list(values))
        width = max(len(c) for c in column)
        cells.append([c.rjust(width) for c in column])
    return "\n".join(" ".join(row) for row in zip(*cells))


def format_global_table(results: dict) -> str:
    """The global results table as the official tool prints it."""
    return _table([(name, [results["global"][name]], True) for name in GLOBAL_METRICS])


def format_per_sequence_table(results: dict) -> str:
    """The per-object table as the official tool prints it."""
    rows = _per_object_rows(results)
    return _table([("Sequence", [r[0] for r in rows], False),
                   ("J-Mean", [r[1] for r in rows], True),
                   ("F-Mean", [r[2] for r in rows], True)])


def _json_safe(value):
    """NaN becomes null so the file is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def report_paths(output_dir: str | os.PathLike, subset: str = "val") -> list[Path]:
    """The files :func:`write_reports` writes: the toolkit's two CSVs and the full JSON."""
    output_dir = Path(output_dir)
    return [output_dir / f"global_results-{subset}.csv", output_dir / f"per-sequence_results-{subset}.csv",
            output_dir / f"results-{subset}.json"]


def remove_reports(output_dir: str | os.PathLike, subset: str = "val") -> None:
    """Delete an earlier run's reports (only those names), so a run that fails leaves none that look current."""
    for path in report_paths(output_dir, subset):
        path.unlink(missing_ok=True)


def write_reports(results: dict, output_dir: str | os.PathLike, subset: str = "val") -> list[Path]:
    """Write ``global_results-<set>.csv``, ``per-sequence_results-<set>.csv`` and ``results-<set>.json``.

    Each file is replaced atomically, so an interrupted run never leaves a half-written report behind.
    """
    paths = report_paths(output_dir, subset)
    texts = [global_csv(results), per_sequence_csv(results), json.dumps(_json_safe(results), indent=1) + "\n"]
    for path, text in zip(paths, texts):
        with atomic_writer(path, "w", newline="") as fh:
            fh.write(text)
    return paths
