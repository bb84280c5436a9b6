"""A synthetic demo video with ground truth, built from scikit-image's bundled sample images.

``python run_vos.py`` with no arguments needs a clip that ships with the code and
has ground truth, so that it can also print J&F. The clip is three textured
objects (a cat-furred horse, an astronaut medallion and a coffee-textured star)
sliding and breathing over a panning photograph. Their paths cross, so objects
partly occlude each other; in the label map the object drawn on top wins.

Only images inside the scikit-image wheel are used (no downloads), and all
randomness comes from ``seed``, so one seed gives bitwise the same files.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data as samples

from eval.files import atomic_writer, write_label_png

FRAMES_SUBDIR = "JPEGImages"
ANNOTATIONS_SUBDIR = "Annotations"
RECIPE_FILE = "clip.json"
# Bump when the rendering changes, so clips made by older code are re-made.
RECIPE_VERSION = 1
JPEG_QUALITY = 90
MIN_SIZE = 32
DEFAULT_NUM_FRAMES = 24
DEFAULT_SIZE = (240, 320)  # (H, W)
# The horse, the medallion and the star, bottom to top.
OBJECT_IDS = (1, 2, 3)


@dataclass(frozen=True)
class DemoClip:
    """Where a made clip lives: a DAVIS-style sequence folder."""

    root: Path
    num_frames: int
    size: tuple[int, int]
    object_ids: tuple[int, ...]

    @property
    def frames_dir(self) -> Path:
        return self.root / FRAMES_SUBDIR

    @property
    def annotations_dir(self) -> Path:
        return self.root / ANNOTATIONS_SUBDIR

    @property
    def first_mask(self) -> Path:
        return self.annotations_dir / "00000.png"

    def frame_paths(self) -> list[Path]:
        return [self.frames_dir / f"{i:05d}.jpg" for i in range(self.num_frames)]

    def annotation_paths(self) -> list[Path]:
        return [self.annotations_dir / f"{i:05d}.png" for i in range(self.num_frames)]


@dataclass(frozen=True)
class Sprite:
    """A textured object cut-out at its base size, and how it moves (fractions of the frame)."""

    texture: np.ndarray  # (h, w, 3) uint8
    alpha: np.ndarray  # (h, w) float32, 1 inside the object
    start: tuple[float, float]  # centre (x, y) at the first frame
    end: tuple[float, float]  # centre (x, y) at the last frame
    scale_amplitude: float
    phase: float


def _fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _horse(height: int) -> tuple[np.ndarray, np.ndarray]:
    silhouette = ~samples.horse()
    rows, cols = np.nonzero(silhouette)
    silhouette = silhouette[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    width = round(height * silhouette.shape[1] / silhouette.shape[0])
    alpha = _fit(silhouette.astype(np.float32), height, width)
    return _fit(samples.chelsea(), height, width), alpha


def _medallion(height: int) -> tuple[np.ndarray, np.ndarray]:
    width = round(height * 0.8)
    alpha = np.zeros((height, width), np.float32)
    cv2.ellipse(alpha, (width // 2, height // 2), (width // 2 - 1, height // 2 - 1), 0, 0, 360, 1.0, -1)
    face = samples.astronaut()[20:400, 100:400]
    return _fit(face, height, width), alpha


def _star(size: int) -> tuple[np.ndarray, np.ndarray]:
    angles = np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, 0.5, 0.22) * (size - 2)
    points = np.stack([size / 2 + radii * np.cos(angles), size / 2 - radii * np.sin(angles)], axis=1)
    alpha = np.zeros((size, size), np.float32)
    cv2.fillPoly(alpha, [np.round(points).astype(np.int32)], 1.0)
    return _fit(samples.coffee()[50:350, 150:450], size, size), alpha


def _sprites(height: int, rng: np.random.Generator) -> list[Sprite]:
    """The sprites of :data:`OBJECT_IDS`, in drawing order."""
    jitter = rng.uniform(-0.04, 0.04, size=(3, 2))
    phases = rng.uniform(0.0, 2 * np.pi, size=3)
    shapes = [_horse(round(0.42 * height)), _medallion(round(0.40 * height)), _star(round(0.28 * height))]
    paths = [((0.28, 0.62), (0.62, 0.66)), ((0.72, 0.42), (0.40, 0.48)), ((0.45, 0.22), (0.70, 0.72))]
    return [
        Sprite(texture, alpha, tuple(np.add(start, shift)), tuple(np.add(end, shift)), 0.12, phase)
        for (texture, alpha), (start, end), shift, phase in zip(shapes, paths, jitter, phases)
    ]


def _background(height: int, width: int) -> np.ndarray:
    """The rocket photograph scaled to leave room for a pan."""
    photo = samples.rocket()
    scale = max(1.2 * height / photo.shape[0], 1.35 * width / photo.shape[1])
    return _fit(photo, round(photo.shape[0] * scale), round(photo.shape[1] * scale))


def _render_frame(background: np.ndarray, sprites: list[Sprite], t: float,
                  height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One frame and its label map at time ``t`` in [0, 1]."""
    room_y, room_x = background.shape[0] - height, background.shape[1] - width
    pan = np.float32([[1, 0, -room_x * (0.1 + 0.8 * t)],
                      [0, 1, -room_y * (0.5 + 0.3 * np.sin(np.pi * t))]])
    frame = cv2.warpAffine(background, pan, (width, height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    labels = np.zeros((height, width), np.uint8)
    for object_id, sprite in enumerate(sprites, start=1):
        scale = 1.0 + sprite.scale_amplitude * np.sin(2 * np.pi * t + sprite.phase)
        centre_x = width * (sprite.start[0] + t * (sprite.end[0] - sprite.start[0]))
        centre_y = height * (sprite.start[1] + t * (sprite.end[1] - sprite.start[1]))
        h, w = sprite.alpha.shape
        place = np.float32([[scale, 0, centre_x - scale * w / 2], [0, scale, centre_y - scale * h / 2]])
        texture = cv2.warpAffine(sprite.texture, place, (width, height), flags=cv2.INTER_LINEAR)
        inside = cv2.warpAffine(sprite.alpha, place, (width, height), flags=cv2.INTER_LINEAR) > 0.5
        frame[inside] = texture[inside]
        labels[inside] = object_id
    return frame, labels


def _recipe(num_frames: int, size: tuple[int, int], seed: int) -> dict:
    return {"version": RECIPE_VERSION, "num_frames": num_frames, "size": list(size), "seed": seed}


def _is_complete(clip: DemoClip, recipe: dict) -> bool:
    """True if ``clip.root`` holds a finished clip made from ``recipe``."""
    try:
        stored = json.loads((clip.root / RECIPE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return stored == recipe and all(p.is_file() for p in clip.frame_paths() + clip.annotation_paths())


def _write_clip(directory: Path, num_frames: int, size: tuple[int, int], seed: int) -> None:
    height, width = size
    sprites = _sprites(height, np.random.default_rng(seed))
    background = _background(height, width)
    (directory / FRAMES_SUBDIR).mkdir()
    for index in range(num_frames):
        frame, labels = _render_frame(background, sprites, index / (num_frames - 1), height, width)
        Image.fromarray(frame).save(directory / FRAMES_SUBDIR / f"{index:05d}.jpg", format="JPEG",
                                    quality=JPEG_QUALITY)
        write_label_png(directory / ANNOTATIONS_SUBDIR / f"{index:05d}.png", labels)


def describe_demo_clip(output_dir: str | os.PathLike, *, num_frames: int = DEFAULT_NUM_FRAMES,
                       size: tuple[int, int] = DEFAULT_SIZE) -> DemoClip:
    """The clip :func:`make_demo_clip` makes in ``output_dir``, described without writing anything."""
    height, width = size
    if num_frames < 2:
        raise ValueError(f"{output_dir}: demo clip needs at least 2 frames, got {num_frames}")
    if min(height, width) < MIN_SIZE:
        raise ValueError(f"{output_dir}: demo clip size must be at least {MIN_SIZE}x{MIN_SIZE}, got {size}")
    return DemoClip(Path(output_dir), num_frames, (height, width), OBJECT_IDS)


def make_demo_clip(output_dir: str | os.PathLike, *, num_frames: int = DEFAULT_NUM_FRAMES,
                   size: tuple[int, int] = DEFAULT_SIZE, seed: int = 0) -> DemoClip:
    """Make the demo clip in ``output_dir`` (or reuse the one already there) and describe it.

    The clip is rendered into a staging folder and moved into place; the recipe
    file that marks it complete is written last. An interrupted make therefore
    leaves no recipe file and the next call makes the clip again.
    """
    clip = describe_demo_clip(output_dir, num_frames=num_frames, size=size)
    root = clip.root
    recipe = _recipe(num_frames, clip.size, seed)
    if _is_complete(clip, recipe):
        return clip
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        _write_clip(staging, num_frames, clip.size, seed)
        (root / RECIPE_FILE).unlink(missing_ok=True)
        for subdir in (FRAMES_SUBDIR, ANNOTATIONS_SUBDIR):
            shutil.rmtree(root / subdir, ignore_errors=True)
            os.replace(staging / subdir, root / subdir)
        with atomic_writer(root / RECIPE_FILE, "w") as fh:
            json.dump(recipe, fh)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return clip
