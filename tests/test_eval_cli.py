"""vos-eval and evaluate_davis on a tiny DAVIS root written by the test: outputs and bad input."""
import json

import numpy as np
import pytest
from PIL import Image

from eval import DavisLayout, EvaluationError, evaluate_davis
from eval.cli import main
from eval.files import write_label_png
from eval.report import report_paths

SEQ = "tiny"
FRAMES = 5
SHAPE = (20, 30)


def ground_truth() -> np.ndarray:
    gt = np.zeros((FRAMES, *SHAPE), np.uint8)
    gt[:, 2:8, 3:10] = 1
    gt[:, 10:16, 15:25] = 2
    return gt


def write_sequence(folder, labels):
    for t, frame in enumerate(labels):
        write_label_png(folder / f"{t:05d}.png", frame)


def write_resolution(root, resolution, gt):
    """Frames (names only: only the names are read) and annotations of SEQ at one resolution."""
    images = root / "JPEGImages" / resolution / SEQ
    images.mkdir(parents=True)
    for t in range(len(gt)):
        (images / f"{t:05d}.jpg").touch()
    write_sequence(root / "Annotations" / resolution / SEQ, gt)


@pytest.fixture
def davis(tmp_path):
    """(davis_root, results_dir) with perfect results for one two-object sequence."""
    root = tmp_path / "DAVIS"
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text(f"{SEQ}\n")
    gt = ground_truth()
    write_resolution(root, "480p", gt)
    results = tmp_path / "results"
    write_sequence(results / SEQ, gt)
    return root, results


def test_cli_writes_fresh_reports_and_never_reuses_stale_ones(davis, tmp_path, capsys):
    root, results = davis
    out = tmp_path / "out"
    out.mkdir()
    (out / "global_results-val.csv").write_text("stale\n")
    (out / "per-sequence_results-val.csv").write_text("stale\n")
    assert main(["--davis-root", str(root), "--results", str(results), "--output", str(out)]) == 0
    assert (out / "global_results-val.csv").read_text() == (
        "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n"
        "1.000,1.000,1.000,0.000,1.000,1.000,0.000\n"
    )
    assert (out / "per-sequence_results-val.csv").read_text() == (
        "Sequence,J-Mean,F-Mean\ntiny_1,1.000,1.000\ntiny_2,1.000,1.000\n"
    )
    report = json.loads((out / "results-val.json").read_text())
    assert report["global"]["J&F-Mean"] == 1.0
    assert sorted(report["per_object"]) == ["tiny_1", "tiny_2"]
    # pandas layout: numeric headers get a sign space, columns are joined by one space.
    assert (" J&F-Mean  J-Mean  J-Recall  J-Decay  F-Mean  F-Recall  F-Decay\n"
            "      1.0     1.0       1.0      0.0     1.0       1.0      0.0\n") in capsys.readouterr().out


def test_cli_defaults_output_to_the_results_folder(davis):
    root, results = davis
    assert main(["--davis-root", str(root), "--results", str(results)]) == 0
    assert (results / "results-val.json").is_file()


def test_failed_run_leaves_no_earlier_report_behind(davis, tmp_path):
    root, results = davis
    out = tmp_path / "out"
    args = ["--davis-root", str(root), "--results", str(results), "--output", str(out)]
    assert main(args) == 0
    reports = report_paths(out, "val")
    assert all(path.is_file() for path in reports)
    (out / "notes.txt").write_text("mine")
    (out / "global_results-test-dev.csv").write_text("another set")
    (results / SEQ / "00002.png").unlink()
    assert main(args) == 2
    assert not any(path.exists() for path in reports)
    # Only this set's report names are removed.
    assert sorted(p.name for p in out.iterdir()) == ["global_results-test-dev.csv", "notes.txt"]


def test_cli_rejects_unknown_flags(davis):
    root, results = davis
    with pytest.raises(SystemExit) as exit_info:
        main(["--davis-root", str(root), "--results", str(results), "--davis_path", "x"])
    assert exit_info.value.code == 2


def test_object_missing_from_results_scores_zero(davis):
    root, results = davis
    write_sequence(results / SEQ, np.where(ground_truth() == 2, 0, ground_truth()).astype(np.uint8))
    numbers = evaluate_davis(root, results, workers=1)
    assert numbers["per_object"]["tiny_1"]["J-Mean"] == 1.0
    assert numbers["per_object"]["tiny_2"]["J-Mean"] == 0.0
    assert numbers["global"]["J-Mean"] == 0.5


def break_missing_frame(results):
    (results / SEQ / "00002.png").unlink()
    return "00002.png", "missing"


def break_wrong_size(results):
    write_label_png(results / SEQ / "00001.png", np.zeros((10, 30), np.uint8))
    return "00001.png", "30x10"


def break_rgb(results):
    Image.new("RGB", SHAPE[::-1]).save(results / SEQ / "00003.png")
    return "00003.png", "RGB image"


def break_unreadable(results):
    (results / SEQ / "00002.png").write_bytes(b"not a png")
    return "00002.png", "cannot read"


def break_id_above_objects(results):
    labels = ground_truth()[1].copy()
    labels[0, 0] = 7
    write_label_png(results / SEQ / "00001.png", labels)
    return "00001.png", "object id 7"


@pytest.mark.parametrize("breaker", [break_missing_frame, break_wrong_size, break_rgb, break_unreadable,
                                     break_id_above_objects])
def test_bad_results_raise_an_error_naming_sequence_and_file(davis, breaker, capsys):
    root, results = davis
    filename, problem = breaker(results)
    with pytest.raises(EvaluationError) as error:
        evaluate_davis(root, results, workers=1)
    message = str(error.value)
    assert SEQ in message and filename in message and problem in message
    assert main(["--davis-root", str(root), "--results", str(results)]) == 2
    assert filename in capsys.readouterr().err


def test_empty_results_folder_is_an_error(davis, tmp_path):
    root, _ = davis
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EvaluationError, match="is empty"):
        evaluate_davis(root, empty)
    assert main(["--davis-root", str(root), "--results", str(empty)]) == 2


def test_missing_annotation_frame_is_an_error(davis):
    root, results = davis
    (root / "Annotations" / "480p" / SEQ / "00004.png").unlink()
    with pytest.raises(EvaluationError, match=f"sequence {SEQ}: 1 frame.*00004.png"):
        evaluate_davis(root, results)


def test_unsupervised_matches_proposals_to_objects(davis):
    root, results = davis
    gt = ground_truth()
    write_sequence(root / "Annotations_unsupervised" / "480p" / SEQ, gt)
    proposals = np.zeros_like(gt)
    proposals[gt == 1] = 2  # proposal ids swapped against the object ids
    proposals[gt == 2] = 1
    proposals[:, 18:, :5] = 3  # a spurious proposal stays unmatched
    write_sequence(results / SEQ, proposals)
    numbers = evaluate_davis(root, results, task="unsupervised", workers=1)
    assert numbers["global"]["J&F-Mean"] == 1.0
    assert numbers["per_object"]["tiny_1"]["frames_evaluated"] == [f"{t:05d}" for t in range(FRAMES)]

    proposals[2, 0, 0] = 21
    write_sequence(results / SEQ, proposals)
    with pytest.raises(EvaluationError, match="at most 20 proposals"):
        evaluate_davis(root, results, task="unsupervised", workers=1)


def upscaled(labels: np.ndarray) -> np.ndarray:
    return labels.repeat(2, axis=-2).repeat(2, axis=-1)


def test_resolution_selects_the_annotations_scored_against(davis, tmp_path, capsys):
    root, _ = davis
    write_resolution(root, "Full-Resolution", upscaled(ground_truth()))
    results = tmp_path / "full"
    write_sequence(results / SEQ, upscaled(ground_truth()))
    numbers = evaluate_davis(root, results, resolution="Full-Resolution", workers=1)
    assert numbers["global"]["J&F-Mean"] == 1.0
    assert numbers["protocol"]["resolution"] == "Full-Resolution"
    assert evaluate_davis(DavisLayout(root, resolution="Full-Resolution"), results, workers=1) == numbers
    # Scored against the 480p annotations, full-size masks are the wrong size.
    with pytest.raises(EvaluationError, match=r"mask is 60x40 \(WxH\) but the annotation is 30x20"):
        evaluate_davis(root, results, workers=1)
    assert main(["--davis-root", str(root), "--results", str(results), "--resolution", "Full-Resolution"]) == 0
    assert json.loads((results / "results-val.json").read_text())["global"]["J&F-Mean"] == 1.0


def test_missing_resolution_is_named(davis, capsys):
    root, results = davis
    assert main(["--davis-root", str(root), "--results", str(results), "--resolution", "Full-Resolution"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{root / 'JPEGImages' / 'Full-Resolution'} not found "
                        f"(DAVIS frames at resolution Full-Resolution; {root / 'JPEGImages'} has 480p)")
    assert "\n" not in err


def test_layout_and_options_beside_it_contradict(davis):
    root, results = davis
    with pytest.raises(TypeError, match="give year inside the DavisLayout"):
        evaluate_davis(DavisLayout(root), results, year="2016")
