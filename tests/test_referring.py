"""Referring-expression benchmarks (eval.referring, vos.referring) on a fixture re-laid from DAVIS-2016."""
from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest

import vos
from eval.davis import evaluate_sequence
from eval.datasets import EvaluationError
from eval.files import read_label_png
from eval.referring import ReferringLayout
from vos.referring import run_referring

FRAMES = 4


@pytest.fixture(scope="module")
def layout(davis_root, tmp_path_factory):
    """Two DAVIS-2016 sequences in the Ref-YouTube-VOS layout: one scored expression each, one unscored."""
    root = tmp_path_factory.mktemp("refdavis")
    videos = sorted(p.name for p in (davis_root / "JPEGImages" / "480p").iterdir())[:2]
    meta = {"videos": {}}
    for video in videos:
        names = sorted(p.stem for p in (davis_root / "JPEGImages" / "480p" / video).glob("*.jpg"))[:FRAMES]
        for kind, suffix in (("JPEGImages", ".jpg"), ("Annotations", ".png")):
            target = root / "valid" / kind / video
            target.mkdir(parents=True)
            for name in names:
                shutil.copy(davis_root / kind / "480p" / video / f"{name}{suffix}", target)
        meta["videos"][video] = {"frames": names, "expressions": {
            "0": {"exp": f"the {video.replace('-', ' ')}", "obj_id": "1"}, "1": {"exp": "something else"}}}
    (root / "meta_expressions" / "valid").mkdir(parents=True)
    (root / "meta_expressions" / "valid" / "meta_expressions.json").write_text(json.dumps(meta))
    return ReferringLayout(root)


def test_every_expression_is_tracked_written_zipped_and_scored_where_it_can_be(layout, tmp_path):
    tracker = vos.load("seem_tiny_random", device="cpu", short_side=64)
    results = run_referring(tracker, layout, tmp_path)
    expressions = layout.expressions()
    assert len(results["expressions"]) == len(expressions) == 4 and results["scored"] == 2
    with zipfile.ZipFile(tmp_path / "submission.zip") as archive:
        names = sorted(archive.namelist())
    assert len(names) == 4 * FRAMES and all(n.startswith("Annotations/") and n.endswith(".png") for n in names)
    for row, expression in zip(results["expressions"], expressions):
        folder = tmp_path / "Annotations" / expression.video / expression.exp_id
        predicted = np.stack([read_label_png(folder / f"{n}.png") for n in layout.frames(expression.video)])
        assert set(np.unique(predicted)) <= {0, 1}
        if expression.obj_id is None:
            assert "J&F-Mean" not in row
            continue
        truth = np.stack([read_label_png(layout.annotations_dir(expression.video) / f"{n}.png") > 0
                          for n in layout.frames(expression.video)])
        expected = evaluate_sequence(truth.astype(np.uint8), predicted, object_ids=[1])[1]
        assert row["J&F-Mean"] == pytest.approx((expected["J-Mean"] + expected["F-Mean"]) / 2)
    assert results["J&F-Mean"] == pytest.approx(np.mean([r["J&F-Mean"] for r in results["expressions"]
                                                         if "J&F-Mean" in r]))
    saved = json.loads((tmp_path / "results-referring-valid.json").read_text())
    assert saved["J&F-Mean"] == pytest.approx(results["J&F-Mean"])
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "Annotations").rglob("*.png")}
    run_referring(tracker, layout, tmp_path)  # resumes: nothing is rewritten
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "Annotations").rglob("*.png")}


def test_a_broken_layout_is_named(tmp_path):
    with pytest.raises(EvaluationError, match="meta_expressions.json not found"):
        ReferringLayout(tmp_path).expressions()
    (tmp_path / "meta_expressions" / "valid").mkdir(parents=True)
    (tmp_path / "meta_expressions" / "valid" / "meta_expressions.json").write_text(
        json.dumps({"videos": {"cat": {"frames": ["00000"], "expressions": {"0": {"exp": "a cat"}}}}}))
    with pytest.raises(EvaluationError, match="frame folder of video 'cat' not found"):
        ReferringLayout(tmp_path).expressions()


def test_the_same_command_runs_a_referring_dataset(layout, tmp_path):
    import run_vos
    from test_run_vos import TINY, run

    out = tmp_path / "out"
    results = run(TINY + ["dataset=refdavis17", f"dataset.root={layout.root}", f"output={out}", "max_frames=3"])
    assert results["scored"] == 2 and (out / "submission.zip").is_file() and (out / "config.yaml").is_file()
    assert len(list((out / "Annotations").rglob("*.png"))) == 4 * 3
    with pytest.raises(run_vos.USER_ERRORS, match="meta_expressions.json not found"):
        run(TINY + ["dataset=refyoutubevos", f"dataset.root={tmp_path / 'nowhere'}", f"output={tmp_path / 'o2'}"])
    assert not (tmp_path / "o2").exists()
