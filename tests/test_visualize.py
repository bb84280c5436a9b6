"""Overlays, overlay videos, grids and plots checked against hand-computed cases."""
from __future__ import annotations

import av
import numpy as np
import pytest

from vos import visualize
from eval.metrics import per_frame_scores
from vos.visualize import (boundary_mask, frame_grid, object_tracks, overlay,
                           plot_metrics_over_time, plot_tracks, write_overlay_video)

# DAVIS / PASCAL-VOC colour map, written out by hand.
RED, GREEN, OLIVE = (128, 0, 0), (0, 128, 0), (128, 128, 0)
GREY = (100, 150, 201)


def constant_frame(height: int, width: int, colour=GREY) -> np.ndarray:
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)).copy()


def test_overlay_blends_palette_colours_and_leaves_background():
    labels = np.zeros((6, 8), np.uint8)
    labels[1:3, 1:4] = 1
    labels[3:6, 5:8] = 2
    result = overlay(constant_frame(6, 8), labels, alpha=0.5, contours=False)
    # round(0.5 * frame + 0.5 * colour), computed by hand: .5 rounds to even.
    assert (result[labels == 1] == (114, 75, 100)).all()
    assert (result[labels == 2] == (50, 139, 100)).all()
    assert (result[labels == 0] == GREY).all()
    opaque = overlay(constant_frame(6, 8), labels, alpha=1.0, contours=False)
    assert (opaque[labels == 2] == GREEN).all()


def test_contours_follow_object_boundaries_only():
    labels = np.zeros((9, 9), np.uint8)
    labels[2:7, 2:7] = 3
    result = overlay(constant_frame(9, 9), labels, alpha=0.25)
    ring = np.zeros((9, 9), bool)
    ring[2:7, 2:7] = True
    ring[3:6, 3:6] = False
    assert (result[ring] == OLIVE).all()
    # interior: round(0.75 * frame + 0.25 * colour)
    assert (result[3:6, 3:6] == (107, 144, 151)).all()
    assert (result[labels == 0] == GREY).all()


def test_frame_edge_is_not_a_contour_but_a_shared_edge_is_on_both_sides():
    labels = np.zeros((4, 6), np.uint8)
    labels[:, :3] = 1
    labels[:, 3:] = 2
    expected = np.zeros((4, 6), bool)
    expected[:, 2:4] = True
    assert (boundary_mask(labels) == expected).all()
    wide = boundary_mask(labels, width=2)
    expected[:, 1:5] = True
    assert (wide == expected).all()


def test_overlay_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="do not match"):
        overlay(constant_frame(4, 4), np.zeros((4, 5), np.uint8))


def moving_square(num_frames: int, height: int, width: int):
    """Frames and labels streamed lazily, as a pipeline would produce them."""
    for t in range(num_frames):
        labels = np.zeros((height, width), np.uint8)
        labels[5:20, 3 + 2 * t:18 + 2 * t] = 1
        yield constant_frame(height, width), labels


def test_overlay_video_reads_back_with_frame_count_and_even_size(tmp_path):
    pairs = list(moving_square(7, 33, 47))
    path = write_overlay_video(tmp_path / "sub" / "overlay.mp4", (f for f, _ in pairs), (l for _, l in pairs),
                               fps=12.0)
    assert path == tmp_path / "sub" / "overlay.mp4"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name in ("h264", "mpeg4")
        assert stream.average_rate == 12
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(decoded) == 7
    assert decoded[0].shape == (34, 48, 3)
    # lossy, but the object must be where it was drawn: compare the overlay region.
    expected = overlay(*pairs[3])
    error = np.abs(decoded[3][:33, :47].astype(int) - expected).mean()
    assert error < 6
    assert sorted(p.name for p in path.parent.iterdir()) == ["overlay.mp4"]


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_each_encoder_choice_writes_a_readable_video(tmp_path, monkeypatch, codec):
    monkeypatch.setattr(visualize, "VIDEO_CODECS", {"no-such-encoder": {}, codec: visualize.VIDEO_CODECS[codec]})
    pairs = list(moving_square(3, 32, 48))
    path = write_overlay_video(tmp_path / "v.mp4", [f for f, _ in pairs], [l for _, l in pairs])
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == {"libx264": "h264", "mpeg4": "mpeg4"}[codec]
        assert sum(1 for _ in container.decode(video=0)) == 3


def test_no_encoder_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(visualize, "VIDEO_CODECS", {"no-such-encoder": {}})
    pairs = list(moving_square(2, 32, 48))
    with pytest.raises(RuntimeError, match="no usable video encoder"):
        write_overlay_video(tmp_path / "v.mp4", [f for f, _ in pairs], [l for _, l in pairs])
    assert list(tmp_path.iterdir()) == []


def test_overlay_video_is_not_written_when_streams_disagree(tmp_path):
    frames = [constant_frame(16, 16)] * 3
    labels = [np.zeros((16, 16), np.uint8)] * 2
    with pytest.raises(ValueError, match="bad.mp4: more frames than label maps"):
        write_overlay_video(tmp_path / "bad.mp4", frames, labels)
    with pytest.raises(ValueError, match=r"frame 1 is \(18, 16\)"):
        write_overlay_video(tmp_path / "bad.mp4", [frames[0], constant_frame(17, 16)],
                            [labels[0], np.zeros((17, 16), np.uint8)])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="no frames"):
        write_overlay_video(tmp_path / "empty.mp4", [], [])
    assert list(tmp_path.iterdir()) == []


def test_frame_grid_places_images_row_by_row():
    images = [constant_frame(2, 3, (v, v, v)) for v in (10, 20, 30)]
    grid = frame_grid(images, columns=2, padding=1, fill=255)
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 3)
    assert (grid[1:3, 1:4] == 10).all()
    assert (grid[1:3, 5:8] == 20).all()
    assert (grid[4:6, 1:4] == 30).all()
    assert (grid[4:6, 5:8] == 255).all()  # empty cell
    assert (grid[0] == 255).all() and (grid[:, 4] == 255).all()  # padding
    with pytest.raises(ValueError, match="image 1"):
        frame_grid([images[0], constant_frame(3, 3)])


def test_per_frame_scores_and_plot_have_one_line_per_object():
    gt = np.zeros((3, 20, 20), np.uint8)
    gt[:, 2:10, 2:10] = 1
    gt[:, 12:18, 12:18] = 2
    pred = gt.copy()
    pred[1, 2:10, 6:10] = 0  # object 1 half missing in frame 1: J = 32 / 64
    pred[2] = np.where(gt[2] == 2, 0, gt[2])  # object 2 lost in frame 2: J = 0
    scores = per_frame_scores(gt, pred)
    assert sorted(scores) == [1, 2]
    np.testing.assert_allclose(scores[1].jaccard, [1.0, 0.5, 1.0])
    np.testing.assert_allclose(scores[2].jaccard, [1.0, 1.0, 0.0])
    np.testing.assert_allclose(scores[2].f_measure, [1.0, 1.0, 0.0])
    assert scores[1].f_measure[0] == 1.0 and 0.0 < scores[1].f_measure[1] < 1.0

    figure = plot_metrics_over_time(scores)
    j_axis, f_axis = figure.axes
    for axis, field in ((j_axis, "jaccard"), (f_axis, "f_measure")):
        assert len(axis.lines) == 2
        for line, object_id in zip(axis.lines, (1, 2)):
            np.testing.assert_allclose(line.get_ydata(), getattr(scores[object_id], field))
            np.testing.assert_allclose(line.get_color(), np.array((RED, GREEN)[object_id - 1]) / 255)


def test_object_tracks_centroid_and_area():
    labels = np.zeros((3, 10, 12), np.uint8)
    labels[0, 2:6, 4:8] = 1  # rows 2..5, cols 4..7
    labels[1, 2:6, 6:10] = 1
    labels[:, 8:10, 0:2] = 2
    tracks = object_tracks(labels)
    np.testing.assert_allclose(tracks[1].centroid[:2], [[5.5, 3.5], [7.5, 3.5]])
    assert np.isnan(tracks[1].centroid[2]).all()
    assert tracks[1].area.tolist() == [16, 16, 0]
    np.testing.assert_allclose(tracks[2].centroid, [[0.5, 8.5]] * 3)

    figure = plot_tracks(tracks, background=constant_frame(10, 12))
    path_axis, area_axis = figure.axes
    assert [line.get_ydata().tolist() for line in area_axis.lines] == [[16, 16, 0], [4, 4, 4]]
    assert len(path_axis.images) == 1
