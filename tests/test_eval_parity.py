"""Parity with davis2017-evaluation on every prediction set in ../shared/data/predictions.

Each set carries the official toolkit's numbers (``official_reference.json``), its CSVs
and its printed output; a new set is picked up without code changes.
"""
import functools
import json
from pathlib import Path

import numpy as np
import pytest

from eval import evaluate_davis, format_global_table
from eval.davis import GLOBAL_METRICS
from eval.report import format_per_sequence_table, global_csv, per_sequence_csv

TOLERANCE = 1e-9
OBJECT_NUMBERS = (*GLOBAL_METRICS, "J_per_frame", "F_per_frame")


def prediction_sets(predictions_dir: Path) -> list[Path]:
    sets = sorted(p.parent for p in predictions_dir.glob("*/official_reference.json"))
    assert sets, f"no prediction set with official_reference.json under {predictions_dir}"
    return sets


@functools.lru_cache(maxsize=None)
def evaluated(davis_root: Path, prediction_set: Path, workers: int = 1) -> dict:
    return evaluate_davis(davis_root, prediction_set, subset="val", year="2016", workers=workers)


def reference(prediction_set: Path) -> dict:
    return json.loads((prediction_set / "official_reference.json").read_text())


def test_global_and_per_object_numbers_match_the_official_reference(davis_root, predictions_dir):
    for prediction_set in prediction_sets(predictions_dir):
        ours, ref = evaluated(davis_root, prediction_set), reference(prediction_set)
        for name in GLOBAL_METRICS:
            assert ours["global"][name] == pytest.approx(ref["global"][name], abs=TOLERANCE), (prediction_set.name, name)
        assert list(ours["per_object"]) == list(ref["per_object"]), prediction_set.name
        for key, expected in ref["per_object"].items():
            got = ours["per_object"][key]
            assert got["frames_evaluated"] == expected["frames_evaluated"], (prediction_set.name, key)
            for name in OBJECT_NUMBERS:
                np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=TOLERANCE,
                                           err_msg=f"{prediction_set.name} {key} {name}")
        for seq, expected in ref["per_sequence"].items():
            for name in GLOBAL_METRICS:
                assert ours["per_sequence"][seq][name] == pytest.approx(expected[name], abs=TOLERANCE), (seq, name)


def test_csvs_equal_the_official_csvs_byte_for_byte(davis_root, predictions_dir):
    for prediction_set in prediction_sets(predictions_dir):
        ours = evaluated(davis_root, prediction_set)
        assert global_csv(ours).encode() == (prediction_set / "official_global_results.csv").read_bytes()
        assert per_sequence_csv(ours).encode() == (prediction_set / "official_per-sequence_results.csv").read_bytes()


def printed_table(stdout: str, title: str) -> str:
    """The table printed under a ``--- <title> ---`` line of the official output."""
    block = stdout.split(title, 1)[1].split("\n", 1)[1]
    return block.split("\n\n", 1)[0].rstrip("\n")


def test_printed_tables_equal_the_official_output(davis_root, predictions_dir):
    for prediction_set in prediction_sets(predictions_dir):
        ours = evaluated(davis_root, prediction_set)
        stdout = (prediction_set / "official_stdout.txt").read_text()
        assert format_global_table(ours) == printed_table(stdout, "Global results for val")
        assert format_per_sequence_table(ours) == printed_table(stdout, "Per sequence results for val")


def test_numbers_do_not_depend_on_the_number_of_workers(davis_root, predictions_dir):
    prediction_set = prediction_sets(predictions_dir)[-1]
    assert evaluated(davis_root, prediction_set, workers=3) == evaluated(davis_root, prediction_set)
