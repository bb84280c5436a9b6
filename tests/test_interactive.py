"""Interactive sessions (vos.interactive): prompts on any frame, corrections, propagation both ways."""
from __future__ import annotations

import numpy as np
import pytest

import vos
from eval.files import read_label_png
from seem_core.spatial_prompts import PromptError
from stand_ins import CopyStandIn, SpatialStandIn
from vos.errors import SettingsError
from vos.interactive import InteractiveSession, PackedLabels
from vos.tracker import Tracker

H, W = 48, 64


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from vos.demo_clip import make_demo_clip

    return make_demo_clip(tmp_path_factory.mktemp("clip"), num_frames=6, size=(H, W))


def box_mask(top: int, left: int, bottom: int, right: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[top:bottom, left:right] = True
    return mask


A, B = box_mask(5, 5, 25, 30), box_mask(15, 20, 40, 50)


def results(session: InteractiveSession) -> list[np.ndarray]:
    return [session.labels(i) for i in range(6)]


def test_a_forward_correction_changes_only_the_frames_from_it_on(clip):
    session = Tracker(CopyStandIn()).session(clip.frames_dir)
    session.add(0, 1, mask=A)
    assert [i for i, _ in session.propagate()] == list(range(6))
    before = results(session)
    assert all(np.array_equal(labels, A.astype(np.uint8)) for labels in before)  # the copy stand-in repeats A
    np.testing.assert_array_equal(session.add(3, 1, mask=B), B.astype(np.uint8))
    list(session.propagate(start=3))
    after = results(session)
    for i in range(3):
        np.testing.assert_array_equal(after[i], before[i])
    np.testing.assert_array_equal(after[3], B.astype(np.uint8))  # the prompted frame keeps its mask
    for i in (4, 5):  # references A (frame 0) and B (frame 3): logits +1/-1 averaged, > 0 only where both agree
        np.testing.assert_array_equal(after[i], (A & B).astype(np.uint8))


def test_backward_propagation_changes_only_the_frames_up_to_its_start(clip):
    session = Tracker(CopyStandIn()).session(clip.frames_dir)
    session.add(4, 1, mask=A)
    assert [i for i, _ in session.propagate(reverse=True)] == [4, 3, 2, 1, 0]
    assert not session.labels(5).any()  # after the start: never segmented
    session.add(2, 1, mask=B)
    list(session.propagate(start=2, reverse=True))
    got = results(session)
    np.testing.assert_array_equal(got[2], B.astype(np.uint8))
    for i in (0, 1):
        np.testing.assert_array_equal(got[i], (A & B).astype(np.uint8))
    for i in (3, 4):
        np.testing.assert_array_equal(got[i], A.astype(np.uint8))


def test_objects_join_late_and_can_be_removed(clip):
    session = Tracker(CopyStandIn()).session(clip.frames_dir)
    session.add(0, 1, mask=A & ~B)
    session.add(3, 7, mask=B)
    got = [labels for _, labels in session.propagate()]
    assert [sorted(set(np.unique(g)) - {0}) for g in got] == [[1]] * 3 + [[1, 7]] * 3
    session.remove(1)
    assert session.object_ids == [7] and not any((session.labels(i) == 1).any() for i in range(6))
    assert [sorted(set(np.unique(labels)) - {0}) for _, labels in session.propagate()] == [[7]] * 3
    session.reset()
    assert session.object_ids == [] and not session.labels(4).any()
    with pytest.raises(SettingsError, match="nothing to propagate"):
        list(session.propagate())


def test_clicks_on_a_frame_add_up_and_a_negative_click_carves(clip):
    session = Tracker(SpatialStandIn()).session(clip.frames_dir)
    first = session.add(2, 3, box=(10, 10, 19, 19))
    np.testing.assert_array_equal(first, np.where(box_mask(10, 10, 20, 20), 3, 0))
    carved = session.add(2, 3, points=[(15, 15)], labels=[0])  # with the box still there
    expected = box_mask(10, 10, 20, 20) & ~box_mask(14, 14, 17, 17)
    np.testing.assert_array_equal(carved, np.where(expected, 3, 0))
    with pytest.raises(PromptError, match="negative clicks alone"):
        session.add(0, 4, points=[(5, 5)], labels=[0])


def test_bad_prompts_name_what_is_wrong(clip):
    session = Tracker(SpatialStandIn()).session(clip.frames_dir)
    for call, message in [
        (lambda: session.add(6, 1, points=[(1, 1)], labels=[1]), "frame index 6 is outside the video's 6 frames"),
        (lambda: session.add(0, 0, points=[(1, 1)], labels=[1]), "object id 0 must be an integer in 1..254"),
        (lambda: session.add(0, 1, points=[(64, 1)], labels=[1]), r"click \(x=64, y=1\) is outside the 64x48 frame"),
        (lambda: session.add(0, 1, stroke=[]), "empty stroke"),
        (lambda: session.add(0, 1), "no prompt"),
    ]:
        with pytest.raises(PromptError, match=message):
            call()


def test_labels_are_kept_compressed():
    labels = np.zeros((480, 854), np.uint8)
    labels[100:300, 200:500] = 3
    packed = PackedLabels.pack(labels)
    assert len(packed.data) < labels.size / 100
    np.testing.assert_array_equal(packed.unpack(), labels)


def test_prompted_track_saves_resumes_and_refuses_other_prompts(clip, tmp_path):
    tracker = Tracker(SpatialStandIn())
    prompts = [{"object": 1, "frame": 1, "box": [10, 10, 19, 19]},
               {"object": 1, "frame": 3, "points": [[15, 15]], "labels": [0]}]
    saved = tracker.track(clip.frames_dir, prompts=prompts).save(tmp_path / "masks")
    masks = [read_label_png(tmp_path / "masks" / f"{name}.png") for name in saved.names]
    assert not masks[0].any()  # before the first prompted frame
    np.testing.assert_array_equal(masks[1], np.where(box_mask(10, 10, 20, 20), 1, 0))
    carved = box_mask(10, 10, 20, 20) & ~box_mask(14, 14, 17, 17)
    np.testing.assert_array_equal(masks[3], np.where(carved, 1, 0))
    assert tracker.track(clip.frames_dir, prompts=prompts).save(tmp_path / "masks").resumed
    from vos.outputs import OutputDirError

    with pytest.raises(OutputDirError, match="another track"):
        tracker.track(clip.frames_dir, prompts=prompts[:1]).save(tmp_path / "masks")


def test_prompt_files_are_checked_before_any_work(clip, tmp_path):
    tracker = Tracker(SpatialStandIn())
    cases = [("not json", "not valid JSON"), ("{}", "expected a non-empty list"),
             ('[{"object": 1, "frame": 0, "point": [[1, 1]]}]', "unknown key.*point"),
             ('[{"object": 1, "frame": 9, "box": [1, 1, 5, 5]}]', "frame index 9 is outside"),
             ('[{"object": 300, "frame": 0, "box": [1, 1, 5, 5]}]', "object id 300"),
             ('[{"object": 1, "frame": 0, "points": [[99, 1]], "labels": [1]}]', "outside the 64x48 frame"),
             ('[{"object": 1, "frame": 0, "stroke": []}]', "empty stroke"),
             ('[{"object": "a", "frame": 0}]', "integer 'object'")]
    for n, (text, message) in enumerate(cases):
        path = tmp_path / f"prompts{n}.json"
        path.write_text(text)
        with pytest.raises(SettingsError, match=f"prompts{n}.json: .*{message}"):
            tracker.track(clip.frames_dir, prompts=path)


def test_tiny_model_session_end_to_end(clip):
    session = vos.load("seem_tiny_random", device="cpu", short_side=64).session(clip.frames_dir)
    labels = session.add(0, 1, points=[(20, 20)], labels=[1])
    assert labels[20, 20] == 1
    streamed = list(session.propagate())
    assert [i for i, _ in streamed] == list(range(6)) and all(set(np.unique(g)) <= {0, 1} for _, g in streamed)
    corrected = session.add(3, 1, points=[(20, 20)], labels=[0])
    assert set(np.unique(corrected)) <= {0, 1}
    list(session.propagate(start=3))
    np.testing.assert_array_equal(session.labels(0), streamed[0][1])


def test_previous_frame_memory_joins_the_references(clip):
    from vos.propagate import PropagationConfig

    session = Tracker(CopyStandIn(), PropagationConfig(memory="first+previous")).session(clip.frames_dir)
    session.add(0, 1, mask=A)
    session.add(3, 1, mask=B)
    got = [labels for _, labels in session.propagate()]
    for i in range(3):
        np.testing.assert_array_equal(got[i], A.astype(np.uint8))
    # frames 4 and 5: references A and B plus the previous frame's B: logits (a + b + b) / 3 > 0 exactly where B is
    for i in (3, 4, 5):
        np.testing.assert_array_equal(got[i], B.astype(np.uint8))


def test_text_on_any_frame_starts_or_corrects_an_object(clip):
    from stand_ins import TextStandIn

    first = read_label_png(clip.first_mask)
    stand_in = TextStandIn({"the left one": first == 1})
    session = Tracker(stand_in).session(clip.frames_dir)
    np.testing.assert_array_equal(session.add(2, 5, text="the left one"), np.where(first == 1, 5, 0))
    assert stand_in.calls == [[(False, "the left one")]]
    list(session.propagate())
    assert [sorted(set(np.unique(session.labels(i))) - {0}) for i in range(6)] == [[]] * 2 + [[5]] * 4
    with pytest.raises(PromptError, match="text must be a non-empty string"):
        session.add(3, 5, text=" ")
