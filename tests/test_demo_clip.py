"""The demo clip: deterministic files, valid ground truth, safe reuse and remaking."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from eval.files import read_label_png
from vos import demo_clip
from vos.demo_clip import Sprite, make_demo_clip

SMALL = dict(num_frames=6, size=(96, 128))


def clip_bytes(clip) -> dict[str, bytes]:
    return {f"{p.parent.name}/{p.name}": p.read_bytes() for p in clip.frame_paths() + clip.annotation_paths()}


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    first = clip_bytes(make_demo_clip(tmp_path / "a", seed=3, **SMALL))
    second = clip_bytes(make_demo_clip(tmp_path / "b", seed=3, **SMALL))
    other = clip_bytes(make_demo_clip(tmp_path / "c", seed=4, **SMALL))
    assert len(first) == 2 * SMALL["num_frames"]
    assert first == second
    assert first != other


@pytest.fixture(scope="module")
def default_clip(tmp_path_factory):
    return make_demo_clip(tmp_path_factory.mktemp("demo"))


def test_layout_and_first_mask(default_clip):
    clip = default_clip
    assert sorted(p.name for p in clip.frames_dir.iterdir()) == [f"{i:05d}.jpg" for i in range(24)]
    assert sorted(p.name for p in clip.annotations_dir.iterdir()) == [f"{i:05d}.png" for i in range(24)]
    assert clip.first_mask == clip.annotations_dir / "00000.png"
    with Image.open(clip.frames_dir / "00007.jpg") as frame:
        assert (frame.format, frame.mode, frame.size) == ("JPEG", "RGB", (320, 240))
    with Image.open(clip.first_mask) as mask:
        assert mask.mode == "P"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_object_is_visible_in_every_frame(tmp_path, seed):
    clip = make_demo_clip(tmp_path, seed=seed)
    assert clip.object_ids == (1, 2, 3)
    for path in clip.annotation_paths():
        labels = read_label_png(path)
        assert labels.shape == (240, 320)
        assert set(np.unique(labels)) == {0, 1, 2, 3}, path
        areas = np.bincount(labels.ravel(), minlength=4)[1:]
        assert areas.min() >= 0.01 * labels.size, f"{path}: object areas {areas}"


def touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of different object ids that are horizontal or vertical neighbours somewhere."""
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        touching = (a != b) & (a > 0) & (b > 0)
        pairs |= {tuple(sorted(p)) for p in zip(a[touching].tolist(), b[touching].tolist())}
    return pairs


def test_objects_partly_occlude_each_other(default_clip):
    """Separate objects only share a boundary where one is drawn over the other."""
    seen = set().union(*(touching_pairs(read_label_png(p)) for p in default_clip.annotation_paths()))
    assert seen == {(1, 2), (1, 3), (2, 3)}


def test_later_object_wins_where_objects_overlap():
    """Hand-made sprites: two 10x10 squares overlapping in a 4-pixel-wide band."""
    red = Sprite(np.full((10, 10, 3), (255, 0, 0), np.uint8), np.ones((10, 10), np.float32),
                 (0.25, 0.5), (0.25, 0.5), 0.0, 0.0)
    blue = Sprite(np.full((10, 10, 3), (0, 0, 255), np.uint8), np.ones((10, 10), np.float32),
                  (0.4, 0.5), (0.4, 0.5), 0.0, 0.0)
    background = np.zeros((40, 60, 3), np.uint8)
    frame, labels = demo_clip._render_frame(background, [red, blue], 0.0, 20, 40)
    # red covers x in [5, 15), blue x in [11, 21); rows [5, 15) for both.
    assert (labels[5:15, 5:11] == 1).all()
    assert (labels[5:15, 11:21] == 2).all()
    assert (frame[5:15, 11:15] == (0, 0, 255)).all()
    assert (labels[:5] == 0).all() and (labels[15:] == 0).all()
    assert labels.sum() == 10 * 6 * 1 + 10 * 10 * 2


def test_existing_complete_clip_is_reused(tmp_path):
    clip = make_demo_clip(tmp_path, **SMALL)
    stamps = {p: p.stat().st_mtime_ns for p in clip.frame_paths()}
    again = make_demo_clip(tmp_path, **SMALL)
    assert again == clip
    assert {p: p.stat().st_mtime_ns for p in again.frame_paths()} == stamps


def test_interrupted_make_is_not_taken_as_complete(tmp_path, monkeypatch):
    def render_then_crash(background, sprites, t, height, width):
        if t > 0.5:
            raise KeyboardInterrupt
        return real_render(background, sprites, t, height, width)

    real_render = demo_clip._render_frame
    monkeypatch.setattr(demo_clip, "_render_frame", render_then_crash)
    with pytest.raises(KeyboardInterrupt):
        make_demo_clip(tmp_path, **SMALL)
    assert list(tmp_path.iterdir()) == []  # staging removed, nothing half-made left behind

    monkeypatch.setattr(demo_clip, "_render_frame", real_render)
    clip = make_demo_clip(tmp_path, **SMALL)
    assert clip_bytes(clip) == clip_bytes(make_demo_clip(tmp_path / "fresh", **SMALL))


def test_clip_with_other_recipe_is_remade(tmp_path):
    make_demo_clip(tmp_path, seed=0, **SMALL)
    remade = make_demo_clip(tmp_path, seed=1, **SMALL)
    assert clip_bytes(remade) == clip_bytes(make_demo_clip(tmp_path / "fresh", seed=1, **SMALL))


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="at least 2 frames"):
        make_demo_clip(tmp_path, num_frames=1)
    with pytest.raises(ValueError, match="size"):
        make_demo_clip(tmp_path, size=(16, 320))
