"""YouTube-VOS, MOSE, LVOS and plain folders: fixtures re-laid from DAVIS-2016 sequences, run end to end.

Each fixture puts real DAVIS frames and annotations in another benchmark's layout, with a
second object (a box away from the first) that starts late, as in YouTube-VOS and LVOS.
The stand-in segmenter copies each object's given mask, so which frames carry which object
is known exactly; one run per dataset config goes through ``run_vos`` with the tiny model.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module

import run_vos
from eval import evaluate_davis
from eval.datasets import FolderLayout, YouTubeVOSLayout
from eval.files import read_label_png, write_label_png
from eval.objects import evaluate_objects
from stand_ins import CopyStandIn
from vos.benchmark import SUBMISSION_FILE, run_benchmark
from vos.tracker import Tracker

SEQUENCES = ("blackswan", "dog")
LATE = 10  # the second object's first frame
BOX = (slice(0, 40), slice(0, 60))  # where it is: away from both DAVIS objects


def davis_labels(davis_root: Path, sequence: str, t: int) -> np.ndarray:
    return read_label_png(davis_root / "Annotations/480p" / sequence / f"{t:05d}.png")


def with_late_box(labels: np.ndarray, t: int) -> np.ndarray:
    labels = labels.copy()
    assert not labels[BOX].any()  # the box does not hide the first object
    if t >= LATE:
        labels[BOX] = 2
    return labels


def link_frames(davis_root: Path, sequence: str, folder: Path, frames: list[int]) -> None:
    folder.mkdir(parents=True)
    for t in frames:
        (folder / f"{t:05d}.jpg").symlink_to(davis_root / "JPEGImages/480p" / sequence / f"{t:05d}.jpg")


def make_youtubevos(davis_root: Path, root: Path, n_frames: int = 15) -> Path:
    """valid/ with every 5th frame, valid_all_frames/ with all; object 2 is given on frame 10 only."""
    videos = {}
    for sequence in SEQUENCES:
        link_frames(davis_root, sequence, root / "valid_all_frames/JPEGImages" / sequence, list(range(n_frames)))
        link_frames(davis_root, sequence, root / "valid/JPEGImages" / sequence, list(range(0, n_frames, 5)))
        annotations = root / "valid/Annotations" / sequence
        write_label_png(annotations / "00000.png", davis_labels(davis_root, sequence, 0))
        sparse = [f"{t:05d}" for t in range(0, n_frames, 5)]
        objects = {"1": {"category": "animal", "frames": sparse}}
        if n_frames > LATE:
            late = np.zeros_like(davis_labels(davis_root, sequence, 0))
            late[BOX] = 2
            write_label_png(annotations / f"{LATE:05d}.png", late)  # the new object only, as YouTube-VOS gives it
            objects["2"] = {"category": "box", "frames": [f for f in sparse if int(f) >= LATE]}
        videos[sequence] = {"objects": objects}
    (root / "valid/meta.json").write_text(json.dumps({"videos": videos}))
    return root


def make_folder(davis_root: Path, base: Path, n_frames: int, full_ground_truth: bool) -> Path:
    """JPEGImages/ + Annotations/: every frame's ground truth (object 2 from frame 10), or the first frame's."""
    for sequence in SEQUENCES:
        link_frames(davis_root, sequence, base / "JPEGImages" / sequence, list(range(n_frames)))
        for t in range(n_frames if full_ground_truth else 1):
            labels = davis_labels(davis_root, sequence, t)
            write_label_png(base / "Annotations" / sequence / f"{t:05d}.png",
                            with_late_box(labels, t) if full_ground_truth else labels)
    return base


def zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return sorted(archive.namelist())


def pngs(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.png"))


@pytest.mark.parametrize("all_frames, write_all, tracked, written", [
    (False, False, 3, ["00000", "00005", "00010"]),
    (True, False, 15, ["00000", "00005", "00010"]),
    (True, True, 15, [f"{t:05d}" for t in range(15)]),
])
def test_youtubevos_layout_frames_late_objects_zip_and_resume(davis_root, tmp_path, all_frames, write_all, tracked,
                                                             written):
    layout = YouTubeVOSLayout(make_youtubevos(davis_root, tmp_path / "ytvos"), all_frames=all_frames,
                              write_all=write_all)
    out = tmp_path / "out"
    stand_in = CopyStandIn()
    assert run_benchmark(Tracker(stand_in), layout, out) is None  # no ground truth for valid: nothing scored here
    # Frames before object 2's first frame are neither segmented for it nor given: object 1 alone runs from 0.
    assert stand_in.frames_seen == tracked * len(SEQUENCES)
    for sequence in SEQUENCES:
        folder = out / "Annotations" / sequence
        assert pngs(folder) == written
        for name in written:
            labels = read_label_png(folder / f"{name}.png")
            expected = davis_labels(davis_root, sequence, 0)  # object 1: the copied first mask
            if int(name) >= LATE:
                expected = with_late_box(expected, int(name))
            np.testing.assert_array_equal(labels, expected)
    assert zip_names(out / SUBMISSION_FILE) == sorted(f"Annotations/{s}/{n}.png" for s in SEQUENCES for n in written)
    with zipfile.ZipFile(out / SUBMISSION_FILE) as archive:
        assert archive.read(f"Annotations/dog/{written[-1]}.png") == \
            (out / "Annotations/dog" / f"{written[-1]}.png").read_bytes()

    mtimes = {p: p.stat().st_mtime_ns for p in (out / "Annotations").rglob("*.png")}
    rerun = CopyStandIn()
    run_benchmark(Tracker(rerun), layout, out)
    assert rerun.frames_seen == 0 and mtimes == {p: p.stat().st_mtime_ns for p in (out / "Annotations").rglob("*.png")}
    report = json.loads((out / "run_report.json").read_text())
    assert report["sequences_tracked"] == 0  # the rerun's report: everything was finished


def test_mose_layout_writes_every_frame_and_a_zip_of_videos_at_the_top(davis_root, tmp_path):
    base = make_folder(davis_root, tmp_path / "mose/valid", n_frames=6, full_ground_truth=False)
    layout = FolderLayout(base.parent, split="valid", submission_root="")
    assert run_benchmark(Tracker(CopyStandIn()), layout, tmp_path / "out") is None
    frames = [f"{t:05d}" for t in range(6)]
    assert zip_names(tmp_path / "out" / SUBMISSION_FILE) == sorted(f"{s}/{n}.png" for s in SEQUENCES for n in frames)
    report = json.loads((tmp_path / "out/run_report.json").read_text())
    assert report["frames"] == 12 and set(report["per_sequence"]) == set(SEQUENCES)


def test_late_objects_are_scored_from_their_first_annotation_on(davis_root, tmp_path):
    """LVOS-like: full ground truth, object 2 from frame 10; it is given there and scored on 11..13 only."""
    base = make_folder(davis_root, tmp_path / "lvos/valid", n_frames=15, full_ground_truth=True)
    layout = FolderLayout(base.parent, split="valid", ground_truth=True)
    assert layout.prompt_frames("dog") == {"00000": base / "Annotations/dog/00000.png",
                                           f"{LATE:05d}": base / f"Annotations/dog/{LATE:05d}.png"}
    results = run_benchmark(Tracker(CopyStandIn()), layout, tmp_path / "out")
    box = results["per_object"]["dog_2"]
    assert box["frames_evaluated"] == ["00011", "00012", "00013"]  # after frame 10, last frame (14) excluded
    assert box["J-Mean"] == 1.0 and box["F-Mean"] == 1.0
    animal = results["per_object"]["dog_1"]
    assert animal["frames_evaluated"] == [f"{t:05d}" for t in range(1, 14)]
    assert 0.0 < animal["J-Mean"] < 1.0  # the copied first mask drifts from the moving dog
    assert (tmp_path / "out/global_results-valid.csv").is_file()


def test_local_scores_equal_the_davis_numbers_on_the_same_data(davis_root, predictions_dir, tmp_path):
    """A DAVIS sequence as a plain folder, real OSVOS masks: the per-object scoring is DAVIS's, to the bit."""
    for sub in ("JPEGImages", "Annotations"):
        (tmp_path / "folder" / sub).mkdir(parents=True)
        for sequence in SEQUENCES:
            (tmp_path / "folder" / sub / sequence).symlink_to(davis_root / sub / "480p" / sequence)
    results_dir = predictions_dir / "osvos_davis2016"
    local = evaluate_objects(FolderLayout(tmp_path / "folder", ground_truth=True), results_dir)
    davis = evaluate_davis(davis_root, results_dir, year="2016", sequences=list(SEQUENCES))
    reference = json.loads((results_dir / "official_reference.json").read_text())["per_sequence"]
    for sequence in SEQUENCES:
        name = f"{sequence}_1"
        assert local["per_object"][name]["J_per_frame"] == davis["per_object"][name]["J_per_frame"]
        assert local["per_object"][name]["F_per_frame"] == davis["per_object"][name]["F_per_frame"]
        assert local["per_sequence"][sequence]["J&F-Mean"] == pytest.approx(reference[sequence]["J&F-Mean"], abs=1e-6)
    assert local["global"] == davis["global"]


@pytest.mark.parametrize("dataset", ["youtubevos2018", "youtubevos2019", "mose", "lvos", "folder"])
def test_the_same_command_runs_every_dataset(davis_root, tmp_path, dataset):
    """``run_vos.py dataset=<name> dataset.root=<dir> output=<dir>`` with the tiny random model."""
    if dataset.startswith("youtubevos"):
        root = make_youtubevos(davis_root, tmp_path / "data", n_frames=6)
    else:
        base = tmp_path / "data" / ("" if dataset == "folder" else "valid")
        make_folder(davis_root, base, n_frames=3, full_ground_truth=dataset != "mose")
        root = tmp_path / "data"
    overrides = [f"dataset={dataset}", f"dataset.root={root}", f"output={tmp_path / 'out'}",
                 "model=seem_tiny_random", "short_side=64"]
    if dataset == "folder":
        overrides.append("dataset.ground_truth=true")
    with initialize_config_module("vos.configs", version_base="1.3"):
        results = run_vos.run(compose(config_name="config", overrides=overrides))
    out = tmp_path / "out"
    if dataset in ("lvos", "folder"):
        assert set(results["per_sequence"]) == set(SEQUENCES) and 0.0 <= results["global"]["J&F-Mean"] <= 1.0
    else:
        assert results is None and (out / SUBMISSION_FILE).is_file()
    masks = out / "Annotations" if dataset.startswith("youtubevos") else out
    assert pngs(masks / "dog") == (["00000", "00005"] if dataset.startswith("youtubevos") else
                                   [f"{t:05d}" for t in range(3)])
    assert json.loads((out / "run_report.json").read_text())["frames"] > 0


def test_saved_scores_are_the_quantised_probabilities_of_the_written_frames(davis_root, tmp_path):
    import vos

    layout = YouTubeVOSLayout(make_youtubevos(davis_root, tmp_path / "ytvos"), all_frames=True)
    out = tmp_path / "out"
    run_benchmark(Tracker(CopyStandIn()), layout, out, save_scores=True)
    assert pngs(out / "Annotations/dog") == ["00000", "00005", "00010"]
    assert sorted(p.stem for p in (out / "scores/dog").glob("*.npz")) == ["00000", "00005", "00010"]
    first = davis_labels(davis_root, "dog", 0)
    for name, ids in (("00005", [1]), ("00010", [1, 2])):
        scores = vos.read_scores(out / "scores/dog" / f"{name}.npz")
        labels = read_label_png(out / "Annotations/dog" / f"{name}.png")
        assert scores.object_ids == ids and scores.probabilities.shape == (len(ids), *first.shape)
        for row, object_id in enumerate(ids):
            np.testing.assert_array_equal(scores.probabilities[row] > 0.5, labels == object_id)
    # The stand-in's logits are +-1 on tracked frames: sigmoid(1) = 0.731 -> 186/255; a given mask is exactly 1.
    assert np.unique(vos.read_scores(out / "scores/dog/00005.npz").probabilities).tolist() == \
        pytest.approx([69 / 255, 186 / 255])
    assert set(np.unique(vos.read_scores(out / "scores/dog/00010.npz").probabilities[1]).tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("override, message", [
    ("dataset.all_frames=maybe", "dataset.all_frames must be true or false"),
    ("dataset.split=../elsewhere", "dataset.split must be a folder name inside the dataset"),
])
def test_bad_dataset_options_are_named(override, message, tmp_path):
    from vos.errors import SettingsError
    from vos.settings import run_settings

    dataset = "folder" if "split" in override else "youtubevos2018"
    with initialize_config_module("vos.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"dataset={dataset}", f"dataset.root={tmp_path}", override])
    with pytest.raises(SettingsError, match=message):
        run_settings(cfg, dataset)


def test_youtubevos_checks_its_folders_before_any_work(davis_root, tmp_path):
    from eval import EvaluationError

    root = make_youtubevos(davis_root, tmp_path / "ytvos")
    (root / "valid/Annotations/dog/00010.png").unlink()
    with pytest.raises(EvaluationError, match=r"00010.png not found \(meta.json starts an object of dog at 00010\)"):
        YouTubeVOSLayout(root).check()
