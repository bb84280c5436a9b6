"""Benchmark runs and single-video runs: layout, resume, shards, evaluation, scoring of user videos.

Most tests use a stand-in segmenter (instant, exact); one runs the tiny random SEEM on real
DAVIS frames for determinism.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eval.datasets import DavisLayout
from eval.files import read_label_png, write_label_png
from stand_ins import CopyStandIn, Interrupted
from vos.benchmark import is_finished, run_benchmark
from vos.single_video import segment_video
from vos.tracker import TRACK_RECORD, Tracker


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.iterdir())}


def davis_subset(davis_root: Path, tmp_path: Path, sequences: list[str]) -> DavisLayout:
    """A DAVIS folder with a shorter sequence list (links to the shared frames)."""
    root = tmp_path / "davis"
    for sub in ("JPEGImages", "Annotations"):
        (root / sub).mkdir(parents=True)
        (root / sub / "480p").symlink_to(davis_root / sub / "480p")
    (root / "ImageSets" / "2016").mkdir(parents=True)
    (root / "ImageSets" / "2016" / "val.txt").write_text("\n".join(sequences) + "\n")
    return DavisLayout(root, year="2016")


def test_benchmark_resumes_after_interruption_and_shards(davis_root, tmp_path):
    layout = davis_subset(davis_root, tmp_path, ["blackswan", "camel", "dog"])
    out = tmp_path / "results"
    with pytest.raises(Interrupted):  # 3 frames per sequence: fails on camel's second frame
        run_benchmark(Tracker(CopyStandIn(fail_at_frame=4)), layout, out, max_frames=3, evaluate=False)
    assert is_finished(out / "blackswan") and not is_finished(out / "camel")
    finished = mtimes(out / "blackswan")

    rerun = CopyStandIn()
    run_benchmark(Tracker(rerun), layout, out, shard=(0, 2), max_frames=3, evaluate=False)  # blackswan, dog
    assert rerun.frames_seen == 3  # only dog: blackswan was finished
    assert mtimes(out / "blackswan") == finished
    assert not is_finished(out / "camel")
    run_benchmark(Tracker(CopyStandIn()), layout, out, shard=(1, 2), max_frames=3, evaluate=False)
    for sequence in ("blackswan", "camel", "dog"):
        assert sorted(p.name for p in (out / sequence).glob("*.png")) == ["00000.png", "00001.png", "00002.png"]
        np.testing.assert_array_equal(read_label_png(out / sequence / "00002.png"),
                                      read_label_png(davis_root / "Annotations/480p" / sequence / "00000.png"))


def test_evaluation_of_a_merged_folder_matches_the_official_numbers(davis_root, predictions_dir, tmp_path):
    """An evaluate-only run over finished results (here: real OSVOS masks) reproduces the DAVIS toolkit."""
    reference = json.loads((predictions_dir / "osvos_davis2016" / "official_reference.json").read_text())
    out = tmp_path / "results"
    sequences = ["blackswan", "dog"]
    for sequence in sequences:
        shutil.copytree(predictions_dir / "osvos_davis2016" / sequence, out / sequence)
        (out / sequence / TRACK_RECORD).write_text('{"complete": true}')
    layout = davis_subset(davis_root, tmp_path, sequences)
    results = run_benchmark(Tracker(CopyStandIn(fail_at_frame=0)), layout, out)  # nothing left to propagate
    per_sequence = reference["per_sequence"]
    expected = np.mean([per_sequence[s]["J&F-Mean"] for s in sequences])
    assert results["global"]["J&F-Mean"] == pytest.approx(expected, abs=1e-6)
    assert (out / "global_results-val.csv").is_file()


def test_full_resolution_masks_are_scored_against_full_resolution_annotations(tmp_path):
    """The runner and the evaluator read one layout: resolution decides frames, annotations and scoring."""
    root = tmp_path / "davis"
    labels = np.zeros((5, 40, 60), np.uint8)
    labels[:, 10:30, 5:25] = 1
    for sub in ("JPEGImages", "Annotations"):
        for res, scale in (("480p", 1), ("Full-Resolution", 2)):
            folder = root / sub / res / "toy"
            folder.mkdir(parents=True)
            for t in range(5):
                big = labels[t].repeat(scale, 0).repeat(scale, 1)
                if sub == "Annotations":
                    write_label_png(folder / f"{t:05d}.png", big)
                else:
                    Image.fromarray(np.stack([big * 200] * 3, -1)).save(folder / f"{t:05d}.jpg")
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("toy\n")
    layout = DavisLayout(root, resolution="Full-Resolution")
    results = run_benchmark(Tracker(CopyStandIn()), layout, tmp_path / "out")
    assert read_label_png(tmp_path / "out/toy/00000.png").shape == (80, 120)
    assert results["global"]["J&F-Mean"] == pytest.approx(1.0)


def test_single_video_scores_exactly_the_tracked_ids(tmp_path):
    """User ids {1, 3} with object 3 lost: J&F 0.5, not DAVIS's 1..max rule with a phantom object 2 at 1.0."""
    frames, gt = tmp_path / "frames", tmp_path / "gt"
    frames.mkdir()
    truth = np.zeros((5, 32, 32), np.uint8)
    truth[:, 2:12, 2:12] = 1
    truth[:, 18:30, 18:30] = 3
    for t in range(5):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(frames / f"{t:05d}.jpg")
        write_label_png(gt / f"{t:05d}.png", truth[t])
    # Track objects 1 and 3, but drop 3 from frame 1 on (a lost object).
    track = Tracker(CopyStandIn()).track(frames, {0: truth[0]}, removed={1: [3]})
    summary = segment_video(track, tmp_path / "run", overlay=False, ground_truth=gt)
    assert set(summary.metrics) == {1, 3}
    assert summary.metrics[1]["J&F-Mean"] == pytest.approx(1.0)
    assert summary.metrics[3]["J&F-Mean"] == pytest.approx(0.0)
    assert json.loads((tmp_path / "run/summary.json").read_text())["J&F-Mean"] == pytest.approx(0.5)


def test_void_pixels_of_the_ground_truth_are_not_scored(tmp_path):
    frames, gt = tmp_path / "frames", tmp_path / "gt"
    frames.mkdir()
    truth = np.zeros((4, 32, 32), np.uint8)
    truth[:, 4:20, 4:20] = 1
    for t in range(4):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(frames / f"{t:05d}.jpg")
        marked = truth[t].copy()
        marked[20:24, 4:20] = 255  # a void band just below the object, where the prediction spills over
        write_label_png(gt / f"{t:05d}.png", marked)
    first = truth[0].copy()
    first[20:24, 4:20] = 1  # the prediction (a copy of this mask) covers the void band too
    track = Tracker(CopyStandIn()).track(frames, first)
    summary = segment_video(track, tmp_path / "run", overlay=False, ground_truth=gt)
    assert summary.metrics[1]["J-Mean"] == pytest.approx(1.0)  # the spill lies in void: not counted


@pytest.mark.parametrize("memory", ["first", "first+previous"])
def test_tiny_seem_on_davis_is_deterministic(davis_root, tmp_path, memory):
    import vos

    frames_dir = davis_root / "JPEGImages/480p/blackswan"
    first_mask = davis_root / "Annotations/480p/blackswan/00000.png"
    runs = []
    for attempt in ("a", "b"):
        tracker = vos.load("seem_tiny_random", short_side=96, memory=memory)
        saved = tracker.track(frames_dir, first_mask, max_frames=3).save(tmp_path / attempt)
        runs.append([read_label_png(saved.directory / f"{n}.png") for n in saved.names])
    assert len(runs[0]) == 3
    np.testing.assert_array_equal(runs[0][0], read_label_png(first_mask))
    for a, b in zip(*runs):
        assert a.shape == (480, 854) and set(np.unique(a)) <= {0, 1}
        np.testing.assert_array_equal(a, b)
