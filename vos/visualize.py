"""Pictures of segmentation results: overlays, overlay videos, frame grids and plots.

Every object gets its DAVIS palette colour, so an overlay, a mask PNG viewed in
any image viewer, and the lines of a plot all agree on which object is which.
Plots are built on ``matplotlib.figure.Figure`` with the Agg canvas, never
pyplot, so they work headless and leave no global figure state behind.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from itertools import zip_longest
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import av
import cv2
from av.codec.codec import UnknownCodecError
import numpy as np

from eval.files import atomic_writer, davis_palette
from eval.metrics import FrameScores
from .masks import object_ids

if TYPE_CHECKING:  # matplotlib is imported by the plots only: overlays need not pay for it
    from matplotlib.figure import Figure

# Preferred encoder first, each with settings for visually clean overlays.
VIDEO_CODECS = {"libx264": {"crf": "20"}, "mpeg4": {"qmax": "5"}}
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def boundary_mask(labels: np.ndarray, width: int = 1) -> np.ndarray:
    """Object pixels within ``width`` pixels (4-connected steps) of a pixel with another id.

    The image border does not count as a boundary: an object cut off by the frame
    edge is not outlined along the edge.
    """
    labels = np.asarray(labels)
    boundary = np.zeros(labels.shape, bool)
    for object_id in object_ids(labels):
        inside = (labels == object_id).astype(np.uint8)
        core = cv2.erode(inside, _CROSS, iterations=width, borderType=cv2.BORDER_CONSTANT, borderValue=1)
        boundary |= (inside > core)
    return boundary


def overlay(frame: np.ndarray, labels: np.ndarray, *, alpha: float = 0.5, contours: bool = True,
            contour_width: int = 1) -> np.ndarray:
    """Colour each object of ``labels`` over ``frame``.

    Object pixels become ``round((1 - alpha) * frame + alpha * colour)`` with the
    object's DAVIS palette colour; background pixels (id 0) are unchanged. With
    ``contours``, pixels on an object's boundary (see :func:`boundary_mask`) get
    the object colour at full strength, so touching objects stay distinguishable.
    """
    frame, labels = np.asarray(frame), np.asarray(labels)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be an (H, W, 3) uint8 RGB image, got {frame.dtype} {frame.shape}")
    if labels.shape != frame.shape[:2]:
        raise ValueError(f"labels of shape {labels.shape} do not match a frame of size {frame.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    colours = davis_palette()[labels].astype(np.float32)
    blended = np.rint((1.0 - alpha) * frame + alpha * colours).astype(np.uint8)
    result = np.where((labels > 0)[..., None], blended, frame)
    if contours:
        edge = boundary_mask(labels, contour_width)
        result[edge] = colours[edge].astype(np.uint8)
    return result


def _even_size(image: np.ndarray) -> np.ndarray:
    """Pad by one replicated row/column where a side is odd (yuv420p needs even sizes)."""
    height, width = image.shape[:2]
    return cv2.copyMakeBorder(image, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE)


def _video_codec() -> tuple[str, dict[str, str]]:
    for name, options in VIDEO_CODECS.items():
        try:
            av.codec.Codec(name, "w")
            return name, options
        except UnknownCodecError:  # not built into this FFmpeg
            continue
    raise RuntimeError(f"no usable video encoder in this PyAV build (tried {', '.join(VIDEO_CODECS)})")


def write_overlay_video(path: str | os.PathLike, frames: Iterable[np.ndarray], labels: Iterable[np.ndarray],
                        fps: float = 24.0, *, alpha: float = 0.5, contours: bool = True) -> Path:
    """Write overlays of ``labels`` on ``frames`` as an MP4 and return its path.

    Frames are encoded one at a time as they come (H.264 if this FFmpeg has it,
    else MPEG-4; yuv420p; an odd side is padded by one pixel). The file appears
    at ``path`` only once it is complete.
    """
    path = Path(path)
    if fps <= 0:
        raise ValueError(f"{path}: fps must be positive, got {fps}")
    count = 0
    with atomic_writer(path, "wb") as fh:
        with av.open(fh, mode="w", format="mp4") as container:
            stream = None
            for frame, label_map in zip_longest(frames, labels):
                if frame is None or label_map is None:
                    raise ValueError(f"{path}: more {'label maps' if frame is None else 'frames'} than "
                                     f"{'frames' if frame is None else 'label maps'} (after {count})")
                image = _even_size(overlay(frame, label_map, alpha=alpha, contours=contours))
                if stream is None:
                    codec, options = _video_codec()
                    stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001),
                                                  options=options)
                    stream.height, stream.width = image.shape[:2]
                    stream.pix_fmt = "yuv420p"
                elif image.shape[:2] != (stream.height, stream.width):
                    raise ValueError(f"{path}: frame {count} is {image.shape[:2]} (sides made even), "
                                     f"earlier frames {(stream.height, stream.width)}")
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
                count += 1
            if stream is None:
                raise ValueError(f"{path}: no frames to write")
            for packet in stream.encode():
                container.mux(packet)
    return path


def frame_grid(images: Sequence[np.ndarray], *, columns: int | None = None,
               captions: Sequence[str] | None = None, padding: int = 4, fill: int = 255) -> np.ndarray:
    """Tile same-sized RGB images row by row into one image, with optional captions.

    ``columns`` defaults to a near-square layout; empty cells and padding are ``fill``.
    """
    if not images:
        raise ValueError("frame_grid needs at least one image")
    height, width = images[0].shape[:2]
    for index, image in enumerate(images):
        if image.shape != (height, width, 3) or image.dtype != np.uint8:
            raise ValueError(f"image {index} is {image.dtype} {image.shape}; all images must be "
                             f"uint8 of shape {(height, width, 3)}")
    if captions is not None and len(captions) != len(images):
        raise ValueError(f"{len(captions)} captions for {len(images)} images")
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    grid = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding, 3),
                   fill, np.uint8)
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        cell = grid[top:top + height, left:left + width]
        cell[:] = image
        if captions is not None:
            _caption(cell, captions[index])
    return grid


def _caption(cell: np.ndarray, text: str) -> None:
    """White text with a dark outline in the top-left corner, readable on any image."""
    scale = max(0.35, cell.shape[0] / 400)
    origin = (4, 4 + round(22 * scale))
    thickness = max(1, round(scale))
    cv2.putText(cell, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(cell, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def _new_figure(columns: int, width: float = 5.0, height: float = 3.2) -> tuple[Figure, list]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * columns, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, list(figure.subplots(1, columns, squeeze=False)[0])


def _line_colour(object_id: int) -> np.ndarray:
    return davis_palette()[object_id] / 255.0


def plot_metrics_over_time(scores: dict[int, FrameScores], *, title: str | None = None) -> Figure:
    """J (left) and F (right) against frame index: one line per object in its palette colour.

    All frames are drawn; note that DAVIS means leave out the first and last frame.
    """
    figure, (j_axis, f_axis) = _new_figure(2)
    for axis, name, field in ((j_axis, "J (region IoU)", "jaccard"), (f_axis, "F (boundary)", "f_measure")):
        for object_id, object_scores in scores.items():
            values = getattr(object_scores, field)
            axis.plot(np.arange(len(values)), values, color=_line_colour(object_id), marker=".",
                      label=f"object {object_id}")
        axis.set(xlabel="frame", ylabel=name, ylim=(-0.02, 1.02))
        axis.grid(alpha=0.3)
        axis.legend(loc="lower left", fontsize="small")
    if title:
        figure.suptitle(title)
    return figure


@dataclass
class Track:
    """Where one object is in each frame: centroid (x, y) in pixels (NaN if absent) and area."""

    centroid: np.ndarray  # (T, 2)
    area: np.ndarray  # (T,) pixel counts


def object_tracks(labels: Iterable[np.ndarray]) -> dict[int, Track]:
    """Centroid and area over time of every object id that appears in a label sequence."""
    label_maps = [np.asarray(label_map) for label_map in labels]
    present = [object_ids(label_map) for label_map in label_maps]
    ids = sorted(set().union(*present))
    tracks = {i: Track(np.full((len(label_maps), 2), np.nan), np.zeros(len(label_maps), np.int64)) for i in ids}
    for t, label_map in enumerate(label_maps):
        for object_id in present[t]:
            rows, cols = np.nonzero(label_map == object_id)
            tracks[object_id].centroid[t] = (cols.mean(), rows.mean())
            tracks[object_id].area[t] = rows.size
    return tracks


def plot_tracks(tracks: dict[int, Track], *, background: np.ndarray | None = None,
                title: str | None = None) -> Figure:
    """Centroid paths (left, over ``background`` if given; a circle marks the start) and area over time (right)."""
    figure, (path_axis, area_axis) = _new_figure(2)
    if background is not None:
        path_axis.imshow(background)
    for object_id, track in tracks.items():
        colour = _line_colour(object_id)
        path_axis.plot(track.centroid[:, 0], track.centroid[:, 1], color=colour, marker=".",
                       label=f"object {object_id}")
        start = np.flatnonzero(~np.isnan(track.centroid[:, 0]))
        if start.size:
            path_axis.plot(*track.centroid[start[0]], color=colour, marker="o", markersize=9,
                           markeredgecolor="white")
        area_axis.plot(np.arange(len(track.area)), track.area, color=colour, marker=".",
                       label=f"object {object_id}")
    if background is None:
        path_axis.invert_yaxis()
    path_axis.set(xlabel="x (px)", ylabel="y (px)", title="centroid path")
    path_axis.set_aspect("equal")
    area_axis.set(xlabel="frame", ylabel="area (px)", title="area")
    area_axis.grid(alpha=0.3)
    area_axis.legend(loc="best", fontsize="small")
    if title:
        figure.suptitle(title)
    return figure
