"""Tracks started from words (Tracker.track(text=...)): bookkeeping with a stand-in, wiring with the tiny model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import vos
from eval.files import read_label_png
from seem_core.config import ConfigError
from seem_core.segmenter import ObjectPrompt
from stand_ins import TextStandIn
from vos.errors import SettingsError
from vos.frames import open_frames
from vos.propagate import PropagationConfig, label_map
from vos.tracker import Tracker


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from vos.demo_clip import make_demo_clip

    return make_demo_clip(tmp_path_factory.mktemp("clip"), num_frames=5, size=(48, 64))


@pytest.fixture(scope="module")
def regions(clip):
    first = read_label_png(clip.first_mask)
    return {"the left one": first == 1, "the right one": first == 2}


def test_text_objects_are_found_then_followed_by_their_mask(clip, regions):
    stand_in = TextStandIn(regions, appears={"the right one": 2})
    frames = list(Tracker(stand_in).track(clip.frames_dir, text={4: "the left one", 9: "the right one"}))
    assert all(f.object_ids == [4, 9] for f in frames)
    for frame in frames:
        expected = np.where(regions["the left one"], 4, 0)
        if frame.index >= 2:  # the second text finds its object on frame 2
            expected = np.where(regions["the right one"], 9, expected)
        np.testing.assert_array_equal(frame.labels, expected)
    # frame 0: both texts alone; frames 1-2: object 4 by its mask, object 9 still by its text;
    # from frame 3 on both by the masks found (the texts are not prompts any more)
    assert stand_in.calls[0] == [(False, "the left one"), (False, "the right one")]
    assert stand_in.calls[1] == stand_in.calls[2] == [(True, None), (False, "the right one")]
    assert len(stand_in.calls) == 3  # frames 3 and 4 take the reference-only path (segment)


def test_text_every_frame_and_text_with_a_mask_keep_the_text_as_a_prompt(clip, regions):
    stand_in = TextStandIn(regions)
    tracker = Tracker(stand_in, PropagationConfig(text_every_frame=True))
    list(tracker.track(clip.frames_dir, text="the left one"))
    assert stand_in.calls[1:] == [[(True, "the left one")]] * 4
    stand_in = TextStandIn(regions)
    first = read_label_png(clip.first_mask)
    frames = list(Tracker(stand_in).track(clip.frames_dir, np.where(first == 2, 2, 0).astype(np.uint8),
                                          text={2: "the right one"}))
    assert stand_in.calls == [[(True, "the right one")]] * 4  # frame 0 is the annotation itself
    assert all(f.object_ids == [2] for f in frames)


def test_bad_texts_are_refused_before_any_work(clip, regions):
    tracker = Tracker(TextStandIn(regions))
    for text, message in [("", "non-empty string"), ({0: "x"}, "outside 1..254"), ({"a": "x"}, "not an integer"),
                          ({1: 3}, "non-empty string"), ({}, "non-empty")]:
        with pytest.raises(SettingsError, match=message):
            tracker.track(clip.frames_dir, text=text)
    with pytest.raises(SettingsError, match=r"no annotation has an object .*text="):
        tracker.track(clip.frames_dir)


@pytest.fixture(scope="module")
def tiny():
    return vos.load("seem_tiny_random", device="cpu", short_side=64)


def test_first_frame_mask_is_what_seem_grounds_for_the_text(clip, tiny):
    texts = {1: "a red ball", 2: "the blue square"}
    frames = list(tiny.track(clip.frames_dir, text=texts, logits=True))
    segmenter = tiny.segmenter
    with open_frames(clip.frames_dir) as source:
        first = source[0]
    encoded = segmenter.encode_text(list(texts.values()))
    expected = segmenter.segment_objects(first, [ObjectPrompt(text=encoded.select([0])),
                                                 ObjectPrompt(text=encoded.select([1]))]).logits
    torch.testing.assert_close(torch.from_numpy(frames[0].logits), expected)
    np.testing.assert_array_equal(frames[0].labels, label_map(expected, [1, 2]))
    assert len(frames) == 5


def test_a_model_that_cannot_take_texts_is_refused_naming_why(clip):
    from vos.models import model_spec

    node = model_spec("seem_tiny_random")
    architecture = {**node.architecture, "dim_proj": 32}
    tracker = vos.load({"architecture": architecture, "checkpoint": "random"}, device="cpu", short_side=64)
    with pytest.raises(ConfigError, match="DIM_PROJ = 32 differs from MODEL.DECODER.HIDDEN_DIM = 64"):
        tracker.track(clip.frames_dir, text="anything")
