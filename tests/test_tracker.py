"""The Python API (vos.load, Tracker.track, Track.save) with a stand-in segmenter whose answers are exact."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vos
from eval.files import MaskFileError, davis_palette, read_label_png, write_label_png
from stand_ins import CopyStandIn, Interrupted
from vos.errors import SettingsError
from vos.outputs import OutputDirError
from vos.tracker import TRACK_RECORD, Tracker


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from vos.demo_clip import make_demo_clip

    return make_demo_clip(tmp_path_factory.mktemp("clip"), num_frames=5, size=(48, 64))


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.iterdir())}


def test_iteration_streams_index_and_labels(clip):
    first = read_label_png(clip.first_mask)
    frames = list(Tracker(CopyStandIn()).track(clip.frames_dir, clip.first_mask))
    assert [index for index, _ in frames] == list(range(5))
    for index, labels in frames:  # the copy stand-in repeats the first mask on every frame
        np.testing.assert_array_equal(labels, first)
    assert frames[2].name == "00002" and frames[2].object_ids == [1, 2, 3] and frames[2].logits is None


def test_arrays_lists_and_one_pass_iterables_are_videos(clip):
    from vos.frames import open_frames

    with open_frames(clip.frames_dir) as source:
        video = np.stack(list(source))
    first = read_label_png(clip.first_mask)
    tracker = Tracker(CopyStandIn())
    expected = [labels for _, labels in tracker.track(video, first)]
    for same in (list(video), (frame for frame in video)):
        got = [labels for _, labels in tracker.track(same, first)]
        assert len(got) == 5 and all(np.array_equal(a, b) for a, b in zip(got, expected))
    stream = tracker.track(iter(list(video)), first)
    list(stream)
    with pytest.raises(SettingsError, match="only once"):
        list(stream)


def test_logits_and_probabilities_on_request(clip):
    frames = list(Tracker(CopyStandIn()).track(clip.frames_dir, clip.first_mask, logits=True))
    first = read_label_png(clip.first_mask)
    assert frames[0].logits.shape == (3, 48, 64) and frames[0].logits.dtype == np.float32
    np.testing.assert_array_equal(frames[0].probabilities, np.stack([first == k for k in (1, 2, 3)]).astype(float))
    np.testing.assert_allclose(frames[3].probabilities[0], np.where(first == 1, 1 / (1 + np.exp(-1)),
                                                                    1 / (1 + np.exp(1))))


def test_objects_join_late_and_leave(clip):
    first = read_label_png(clip.first_mask)
    only_one = np.where(first == 1, 1, 0).astype(np.uint8)
    later = np.where(first == 2, 7, 0).astype(np.uint8)  # a new object with id 7 at frame 2
    frames = list(Tracker(CopyStandIn()).track(clip.frames_dir, {0: only_one, 2: later}, removed={4: [1]}))
    assert [f.object_ids for f in frames] == [[1], [1], [1, 7], [1, 7], [7]]
    np.testing.assert_array_equal(frames[3].labels, only_one + later)
    np.testing.assert_array_equal(frames[4].labels, later)


def test_save_writes_davis_pngs_and_resumes(clip, tmp_path):
    out = tmp_path / "clip"
    tracker = Tracker(CopyStandIn())
    saved = tracker.track(clip.frames_dir, clip.first_mask).save(out)
    assert not saved.resumed and saved.names == [f"{i:05d}" for i in range(5)] and saved.object_ids == [1, 2, 3]
    with Image.open(out / "00003.png") as image:
        assert image.mode == "P"
        palette = np.array(image.getpalette()[:768], dtype=np.uint8).reshape(-1, 3)
        np.testing.assert_array_equal(palette, davis_palette())
    before = mtimes(out)
    stand_in = CopyStandIn()
    again = Tracker(stand_in).track(clip.frames_dir, clip.first_mask).save(out)
    assert again.resumed and stand_in.frames_seen == 0 and mtimes(out) == before


def test_an_interrupted_save_is_redone_and_another_track_is_refused(clip, tmp_path):
    out = tmp_path / "clip"
    with pytest.raises(Interrupted):
        Tracker(CopyStandIn(fail_at_frame=3)).track(clip.frames_dir, clip.first_mask).save(out)
    assert sorted(p.name for p in out.glob("*.png")) == ["00000.png", "00001.png", "00002.png"]
    saved = Tracker(CopyStandIn()).track(clip.frames_dir, clip.first_mask).save(out)
    assert not saved.resumed and len(list(out.glob("*.png"))) == 5

    other_mask = np.where(read_label_png(clip.first_mask) == 2, 2, 0).astype(np.uint8)
    before = mtimes(out)
    with pytest.raises(OutputDirError, match="another track"):
        Tracker(CopyStandIn()).track(clip.frames_dir, other_mask).save(out)
    assert mtimes(out) == before
    Tracker(CopyStandIn()).track(clip.frames_dir, other_mask).save(out, overwrite=True)
    assert set(np.unique(read_label_png(out / "00004.png"))) == {0, 2}


def test_a_folder_of_another_tool_is_refused(clip, tmp_path):
    foreign = tmp_path / "osvos"
    write_label_png(foreign / "00000.png", np.ones((48, 64), np.uint8))
    with pytest.raises(OutputDirError, match="holds no seem-vos track"):
        Tracker(CopyStandIn()).track(clip.frames_dir, clip.first_mask).save(foreign)
    assert not (foreign / TRACK_RECORD).exists()


def test_bad_annotations_fail_when_the_track_is_made(clip, tmp_path):
    tracker = Tracker(CopyStandIn())
    with pytest.raises(SettingsError, match=r"masks\[0\]: mask is 2x2 \(HxW\) but the frames are 48x64"):
        tracker.track(clip.frames_dir, np.ones((2, 2), np.uint8))
    with pytest.raises(SettingsError, match="frame index 9 is outside the video's 5 frames"):
        tracker.track(clip.frames_dir, {0: clip.first_mask, 9: clip.first_mask})
    with pytest.raises(SettingsError, match="no annotation has an object"):
        tracker.track(clip.frames_dir, np.zeros((48, 64), np.uint8))
    write_label_png(tmp_path / "small.png", np.ones((4, 4), np.uint8))
    with pytest.raises(MaskFileError, match="small.png: mask is 4x4"):
        tracker.track(clip.frames_dir, tmp_path / "small.png")


def test_frames_before_the_first_object_are_background_and_not_segmented(clip, tmp_path):
    """A video whose first object appears on frame 2: frames 0-1 are empty, the model starts at frame 2."""
    stand_in = CopyStandIn()
    first = read_label_png(clip.first_mask)
    saved = Tracker(stand_in).track(clip.frames_dir, {2: first}).save(tmp_path / "late", only=["00000", "00003"])
    assert stand_in.frames_seen == 3  # frames 2, 3, 4
    assert saved.names == ["00000", "00003"] and sorted(p.name for p in (tmp_path / "late").glob("*.png")) == \
        ["00000.png", "00003.png"]
    assert not read_label_png(tmp_path / "late/00000.png").any()
    np.testing.assert_array_equal(read_label_png(tmp_path / "late/00003.png"), first)


def test_vos_load_the_tiny_random_model_end_to_end(clip, tmp_path):
    tracker = vos.load("seem_tiny_random", short_side=64)
    assert tracker.description["model"]["checkpoint"] == "random"
    saved = tracker.track(clip.frames_dir, clip.first_mask, max_frames=3).save(tmp_path / "run")
    again = vos.load("seem_tiny_random", short_side=64).track(clip.frames_dir, clip.first_mask, max_frames=3)
    assert [labels.tolist() for _, labels in again] == \
        [read_label_png(tmp_path / "run" / f"{n}.png").tolist() for n in saved.names]  # deterministic


def test_vos_load_names_what_is_wrong(tmp_path):
    with pytest.raises(Exception, match="unknown model 'seem_nope'.*seem_focalt"):
        vos.load("seem_nope")
    with pytest.raises(Exception, match="absent.pt.*not a local file. Set checkpoint to"):
        vos.load("seem_tiny_random", checkpoint=tmp_path / "absent.pt")
    assert {"seem_focalt", "seem_focalt_v1", "seem_focall", "seem_focall_v1", "seem_tiny_random"} <= \
        set(vos.model_names())
