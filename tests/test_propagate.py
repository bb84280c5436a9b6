"""Propagation rules checked against a stand-in segmenter whose answers are known exactly.

The stand-in knows the true masks of every frame. A prompt made at frame r for
object k answers on frame t with logits +4 on the true mask of k at t when the
prompt is fresh (t - r <= 1), and with a stale answer (+1 on k's mask at frame
r, -1 elsewhere) otherwise. So with ``first`` memory frames t >= 2 come out as
frame 0's masks, and with ``first+previous`` (fresh + stale, averaged) they
come out as the truth.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seem_core.visual_sampler import VisualPrompt
from vos.propagate import PropagationConfig, Propagator, label_map

HEIGHT, WIDTH, FRAMES = 12, 16, 5


def square(top: int, left: int, size: int = 4) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    mask[top:top + size, left:left + size] = True
    return mask


def truth_video(with_late_object: bool = False) -> list[np.ndarray]:
    """Object 1 moves right 2 px a frame, object 2 moves down 1 px a frame; object 3 appears at frame 2."""
    video = []
    for t in range(FRAMES):
        labels = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
        labels[square(1, 1 + 2 * t)] = 1
        labels[square(5 + t // 2, 12)] = 2
        if with_late_object and t >= 2:
            labels[square(8, 1, size=3)] = 3
        video.append(labels)
    return video


class ShiftStandIn:
    """The segmenter interface with answers derived from the true masks."""

    def __init__(self, truth: list[np.ndarray]):
        self.truth = truth
        self.references: list[tuple[int, np.ndarray]] = []  # (frame, masks) of every encode_reference
        self.encoded_frames: list[int] = []

    def encode_frame(self, frame: np.ndarray) -> int:
        index = int(frame[0, 0, 0])
        self.encoded_frames.append(index)
        return index

    def encode_reference(self, frame: int, masks: np.ndarray, generator=None) -> VisualPrompt:
        masks = np.asarray(masks, dtype=bool)
        self.references.append((frame, masks.copy()))
        ids = [self._object_of(frame, m) for m in masks]
        query = torch.tensor([[k, frame] for k in ids], dtype=torch.float32)
        count = len(ids)
        return VisualPrompt(query, torch.zeros_like(query), [torch.zeros(count, 1, 2)],
                            [torch.zeros(count, 1, dtype=torch.bool)])

    def _object_of_all(self, frame: int, masks: np.ndarray) -> list[int]:
        return [self._object_of(frame, m) for m in masks]

    def _object_of(self, frame: int, mask: np.ndarray) -> int:
        overlaps = np.bincount(self.truth[frame][mask], minlength=256)
        overlaps[0] = 0
        return int(overlaps.argmax())

    def segment(self, frame: int, prompt: VisualPrompt, to_original: bool = True):
        rows = []
        for k, r in prompt.query.long().tolist():
            if frame - r <= 1:
                rows.append(np.where(self.truth[frame] == k, 4.0, -4.0))
            else:
                rows.append(np.where(self.truth[r] == k, 1.0, -1.0))
        logits = torch.tensor(np.stack(rows), dtype=torch.float32)

        class Result:
            pass

        result = Result()
        result.logits = logits
        return result


def frames_of(count: int = FRAMES) -> list[np.ndarray]:
    frames = []
    for t in range(count):
        frame = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
        frame[0, 0, 0] = t
        frames.append(frame)
    return frames


def run(truth, memory, annotations, threshold=0.0):
    stand_in = ShiftStandIn(truth)
    config = PropagationConfig(memory=memory, threshold=threshold)
    return propagate(stand_in, annotations, config), stand_in


def propagate(stand_in, annotations, config=None):
    propagator = Propagator(stand_in, config)
    return [propagator.step(frame, annotations.get(t)) for t, frame in enumerate(frames_of())]


def test_label_map_highest_logit_wins_above_threshold():
    logits = torch.tensor([
        [[3.0, 3.0, -1.0, 0.5]],
        [[5.0, 1.0, -2.0, 0.5]],
    ])
    # pixel 0: object 7 (5 > 3); pixel 1: object 4; pixel 2: both negative -> 0; pixel 3: tie -> first
    np.testing.assert_array_equal(label_map(logits, [4, 7]), [[7, 4, 0, 4]])
    np.testing.assert_array_equal(label_map(logits, [4, 7], threshold=2.0), [[7, 4, 0, 0]])
    assert label_map(logits, [4, 7]).dtype == np.uint8


def test_label_map_rejects_mismatched_ids():
    with pytest.raises(ValueError, match="shape"):
        label_map(torch.zeros(2, 3, 3), [1])


def test_first_memory_uses_only_first_frame_prompts():
    truth = truth_video()
    labels, stand_in = run(truth, "first", {0: truth[0]})
    np.testing.assert_array_equal(labels[0], truth[0])
    np.testing.assert_array_equal(labels[1], truth[1])  # the first prompt is still fresh
    for t in range(2, FRAMES):
        np.testing.assert_array_equal(labels[t], truth[0])  # stale: frame 0's masks
    assert [frame for frame, _ in stand_in.references] == [0]
    assert stand_in.encoded_frames == list(range(FRAMES))  # backbone once per frame


def test_first_plus_previous_follows_the_object():
    truth = truth_video()
    labels, stand_in = run(truth, "first+previous", {0: truth[0]})
    for t in range(FRAMES):
        np.testing.assert_array_equal(labels[t], truth[t])
    # after the first-frame prompt, every prediction is encoded as the next frame's prompt
    assert [frame for frame, _ in stand_in.references] == [0] + list(range(FRAMES))
    for frame, masks in stand_in.references[1:]:
        np.testing.assert_array_equal(masks, np.stack([labels[frame] == 1, labels[frame] == 2]))


def test_ids_that_are_not_consecutive_are_kept_as_given():
    truth = [np.where(t == 2, 9, t).astype(np.uint8) for t in truth_video()]  # objects 1 and 9
    labels, _ = run(truth, "first+previous", {0: truth[0]})
    for t in range(FRAMES):
        np.testing.assert_array_equal(labels[t], truth[t])


def test_late_object_is_tracked_from_its_annotation_only():
    truth = truth_video(with_late_object=True)
    # frame 2's annotation holds every object; only the new id 3 may be taken from it
    labels, stand_in = run(truth, "first", {0: truth[0], 2: truth[2]})
    assert 3 not in labels[0] and 3 not in labels[1]
    np.testing.assert_array_equal(labels[2] == 3, truth[2] == 3)
    np.testing.assert_array_equal(labels[2] == 1, truth[0] == 1)  # tracked object stays predicted (stale)
    np.testing.assert_array_equal(labels[3] == 3, truth[3] == 3)  # fresh prompt of frame 2
    assert [(frame, len(masks)) for frame, masks in stand_in.references] == [(0, 2), (2, 1)]


def test_threshold_is_applied():
    truth = truth_video()
    labels, _ = run(truth, "first", {0: truth[0]}, threshold=5.0)
    np.testing.assert_array_equal(labels[0], truth[0])  # the annotation itself
    assert all(not frame.any() for frame in labels[1:])  # no logit clears 5


def test_first_frame_needs_objects():
    truth = truth_video()
    with pytest.raises(ValueError, match="first frame"):
        propagate(ShiftStandIn(truth), {})
    with pytest.raises(ValueError, match="first frame"):
        propagate(ShiftStandIn(truth), {0: np.zeros((HEIGHT, WIDTH), np.uint8)})


def test_unknown_memory_is_rejected():
    with pytest.raises(ValueError, match="first\\+previous"):
        PropagationConfig(memory="everything")


def test_removed_object_is_gone_from_its_frame_on_and_the_others_stay():
    truth = truth_video()
    stand_in = ShiftStandIn(truth)
    propagator = Propagator(stand_in, PropagationConfig(memory="first+previous"))
    labels = []
    for t, frame in enumerate(frames_of()):
        labels.append(propagator.step(frame, truth[0] if t == 0 else None, removed=[2] if t == 3 else ()))
    for t in range(3):
        np.testing.assert_array_equal(labels[t], truth[t])
    for t in (3, 4):
        np.testing.assert_array_equal(labels[t], np.where(truth[t] == 2, 0, truth[t]))
    assert propagator.ids == [1]
    # From frame 3 on, no prompt of object 2 is encoded or decoded any more.
    assert all(2 not in stand_in._object_of_all(frame, masks) for frame, masks in stand_in.references[4:])


def test_logits_follow_the_object_order_and_annotated_objects_are_certain():
    truth = truth_video(with_late_object=True)
    propagator = Propagator(ShiftStandIn(truth))
    for t, frame in enumerate(frames_of()):
        labels = propagator.step(frame, {0: truth[0], 2: truth[2]}.get(t))
        logits = propagator.logits
        assert logits.shape == (len(propagator.ids), HEIGHT, WIDTH)
        if t == 2:  # object 3 is copied from the annotation: +inf inside, -inf outside
            assert propagator.ids == [1, 2, 3]
            assert torch.equal(torch.isposinf(logits[2]), torch.from_numpy(truth[2] == 3))
            assert torch.isneginf(logits[2][torch.from_numpy(truth[2] != 3)]).all()
        if t == 1:  # fresh prompts: +4 on the true mask of each object, -4 elsewhere
            expected = np.stack([np.where(truth[1] == k, 4.0, -4.0) for k in (1, 2)])
            np.testing.assert_array_equal(logits.numpy(), expected)
        np.testing.assert_array_equal(labels, np.asarray(label_map(logits, propagator.ids)))
