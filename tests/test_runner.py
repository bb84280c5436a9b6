"""Single-video and benchmark runs: layout, palette, resume, shards, refusals, determinism.

Most tests drive the runner with a stand-in segmenter (instant, exact); the
end-to-end ones use the seeded tiny SEEM checkpoint on real DAVIS frames.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from eval.files import MaskFileError, davis_palette, read_label_png, write_label_png
from seem_core.visual_sampler import VisualPrompt
from vos.demo_clip import make_demo_clip
from vos.frames import open_frames
from vos.runner import COMPLETE_MARKER, DavisDataset, OutputDirError, is_complete, parse_shard, \
    prepare_output_dir, run_benchmark, segment_video


class Interrupted(RuntimeError):
    pass


class CopyStandIn:
    """Predicts every object exactly where its reference mask was (logits +-1); can fail at frame k."""

    def __init__(self, fail_at_frame: int | None = None):
        self.fail_at_frame = fail_at_frame
        self.frames_seen = 0
        self.masks: list[np.ndarray] = []

    def encode_frame(self, frame):
        if self.frames_seen == self.fail_at_frame:
            raise Interrupted(f"stand-in stops at frame {self.frames_seen}")
        self.frames_seen += 1
        return frame

    def encode_reference(self, frame, masks, generator=None) -> VisualPrompt:
        start = len(self.masks)
        self.masks.extend(np.asarray(masks, dtype=bool))
        query = torch.arange(start, len(self.masks), dtype=torch.float32)[:, None]
        return VisualPrompt(query, query, [query[:, None]], [torch.zeros(len(masks), 1, dtype=torch.bool)])

    def segment(self, frame, prompt, to_original=True):
        rows = [np.where(self.masks[i], 1.0, -1.0) for i in prompt.query[:, 0].long().tolist()]
        return type("Segmentation", (), {"logits": torch.tensor(np.stack(rows))})()


@pytest.fixture(scope="module")
def demo_clip(tmp_path_factory):
    return make_demo_clip(tmp_path_factory.mktemp("clip"), num_frames=5, size=(48, 64))


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.iterdir())}


def test_single_video_layout_palette_and_summary(demo_clip, tmp_path):
    out = tmp_path / "run"
    summary = segment_video(CopyStandIn(), demo_clip.frames_dir, demo_clip.first_mask, out,
                            ground_truth=demo_clip.annotations_dir)
    names = [f"{i:05d}" for i in range(5)]
    assert summary.names == names
    assert sorted(p.name for p in (out / "masks").glob("*.png")) == [f"{n}.png" for n in names]
    first = read_label_png(demo_clip.first_mask)
    for name in names:  # the copy stand-in repeats the first mask on every frame
        with Image.open(out / "masks" / f"{name}.png") as image:
            assert image.mode == "P"
            palette = np.array(image.getpalette()[:768], dtype=np.uint8).reshape(-1, 3)
            np.testing.assert_array_equal(palette, davis_palette())
            np.testing.assert_array_equal(np.array(image), first)
    assert summary.object_ids == [1, 2, 3]
    assert summary.overlay_path == out / "overlay.mp4" and summary.overlay_path.stat().st_size > 0
    record = json.loads((out / "summary.json").read_text())
    assert record["frames"] == 5 and record["object_ids"] == [1, 2, 3]
    assert set(summary.metrics) == {1, 2, 3}
    assert record["J&F-Mean"] == pytest.approx(np.mean([m["J&F-Mean"] for m in summary.metrics.values()]))


def test_single_video_bad_inputs_write_nothing(demo_clip, tmp_path):
    out = tmp_path / "run"
    small = tmp_path / "small.png"
    write_label_png(small, np.ones((10, 10), np.uint8))
    with pytest.raises(MaskFileError, match="small.png"):
        segment_video(CopyStandIn(), demo_clip.frames_dir, small, out)
    empty = tmp_path / "empty.png"
    write_label_png(empty, np.zeros((48, 64), np.uint8))
    with pytest.raises(MaskFileError, match="empty.png.*no object"):
        segment_video(CopyStandIn(), demo_clip.frames_dir, empty, out)
    assert not out.exists()


def test_output_folder_of_another_run_is_refused(tmp_path):
    config = {"input": "/a.mp4", "mask": "/a.png", "propagation": {"memory": "first"}}
    prepare_output_dir(tmp_path, config)
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / COMPLETE_MARKER).write_text("{}")
    prepare_output_dir(tmp_path, {**config, "overlay": False})  # not part of the run's identity
    other = {**config, "propagation": {"memory": "first+previous"}}
    with pytest.raises(OutputDirError, match="config.yaml.*propagation.*overwrite=true"):
        prepare_output_dir(tmp_path, other)
    assert is_complete(tmp_path / "masks")
    prepare_output_dir(tmp_path, other, overwrite=True)
    assert not is_complete(tmp_path / "masks")  # recomputed on the next run


def test_parse_shard():
    assert parse_shard(None) == (0, 1)
    assert parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "a/b", "1"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)


def davis_subset(davis_root: Path, tmp_path: Path, sequences: list[str]) -> DavisDataset:
    """A DAVIS folder with a shorter sequence list (links to the shared frames)."""
    root = tmp_path / "davis"
    for sub in ("JPEGImages", "Annotations"):
        (root / sub).mkdir(parents=True)
        (root / sub / "480p").symlink_to(davis_root / sub / "480p")
    (root / "ImageSets" / "2016").mkdir(parents=True)
    (root / "ImageSets" / "2016" / "val.txt").write_text("\n".join(sequences) + "\n")
    return DavisDataset(root, year="2016")


def test_benchmark_resumes_after_interruption_and_shards(davis_root, tmp_path):
    dataset = davis_subset(davis_root, tmp_path, ["blackswan", "camel", "dog"])
    out = tmp_path / "results"
    with pytest.raises(Interrupted):  # 3 frames per sequence: fails on camel's second frame
        run_benchmark(CopyStandIn(fail_at_frame=4), dataset, out, max_frames=3, evaluate=False)
    assert is_complete(out / "blackswan") and not is_complete(out / "camel")
    finished = mtimes(out / "blackswan")

    rerun = CopyStandIn()
    run_benchmark(rerun, dataset, out, shard="0/2", max_frames=3, evaluate=False)  # blackswan, dog
    assert rerun.frames_seen == 3  # only dog: blackswan was finished
    assert mtimes(out / "blackswan") == finished
    assert not is_complete(out / "camel")
    run_benchmark(CopyStandIn(), dataset, out, shard="1/2", max_frames=3, evaluate=False)
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
        (out / sequence / COMPLETE_MARKER).write_text("{}")
    dataset = davis_subset(davis_root, tmp_path, sequences)
    results = run_benchmark(CopyStandIn(fail_at_frame=0), dataset, out)  # nothing left to propagate
    per_sequence = reference["per_sequence"]
    expected = np.mean([per_sequence[s]["J&F-Mean"] for s in sequences])
    assert results["global"]["J&F-Mean"] == pytest.approx(expected, abs=1e-6)
    assert (out / "global_results-val.csv").is_file()


@pytest.fixture(scope="session")
def tiny_segmenter(tmp_path_factory):
    from seem_core.segmenter import SEEMSegmenter
    from tiny_model import make_tiny_checkpoint

    config, checkpoint = make_tiny_checkpoint(tmp_path_factory.mktemp("tiny"))
    return SEEMSegmenter.from_checkpoint(config, checkpoint, short_side=96)


@pytest.mark.parametrize("memory", ["first", "first+previous"])
def test_tiny_seem_on_davis_is_deterministic(tiny_segmenter, davis_root, tmp_path, memory):
    from vos.propagate import PropagationConfig

    frames_dir = davis_root / "JPEGImages/480p/blackswan"
    first_mask = davis_root / "Annotations/480p/blackswan/00000.png"
    runs = []
    for attempt in ("a", "b"):
        with open_frames(frames_dir, max_frames=3) as frames:
            summary = segment_video(tiny_segmenter, frames, first_mask, tmp_path / attempt, overlay=False,
                                    propagation=PropagationConfig(memory=memory))
        runs.append([read_label_png(summary.mask_dir / f"{n}.png") for n in summary.names])
    assert len(runs[0]) == 3
    np.testing.assert_array_equal(runs[0][0], read_label_png(first_mask))
    for a, b in zip(*runs):
        assert a.shape == (480, 854) and set(np.unique(a)) <= {0, 1}
        np.testing.assert_array_equal(a, b)


def test_foreign_or_unusable_output_folders_are_refused_and_left_alone(tmp_path):
    """Masks of another tool (no config.yaml) would be overwritten: refused, as is a file for a folder."""
    config = {"input": "/a.mp4", "mask": "/a.png"}
    foreign = tmp_path / "osvos"
    write_label_png(foreign / "blackswan" / "00001.png", np.ones((4, 4), np.uint8))
    before = mtimes(foreign / "blackswan")
    with pytest.raises(OutputDirError, match="osvos: the output folder is not empty.*overwrite=true"):
        prepare_output_dir(foreign, config)
    assert mtimes(foreign / "blackswan") == before and not (foreign / "config.yaml").exists()
    (foreign / "blackswan" / COMPLETE_MARKER).write_text("{}")
    prepare_output_dir(foreign, config, overwrite=True)
    assert not is_complete(foreign / "blackswan")  # recomputed on the next run

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    prepare_output_dir(fresh, config)  # an empty folder is fine, and then it is ours
    prepare_output_dir(fresh, config)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(OutputDirError, match="file: the output path is a file"):
        prepare_output_dir(a_file, config)
    (fresh / "config.yaml").write_text("input: [unclosed")
    with pytest.raises(OutputDirError, match="config.yaml: cannot read the saved config"):
        prepare_output_dir(fresh, config)
