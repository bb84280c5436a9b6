"""Decode speed of every frame source on a 480p clip, in frames per second.

The clip is made here: the frames of one DAVIS sequence (or synthetic 854x480 frames
when the shared data is absent) encoded to H.264 with PyAV. Each backend then streams
the whole clip and reads it once more in reverse order (random access, the worst case
for a video decoder). The JPEG folder itself is timed too, as the "folder" source.

    python benchmarks/decode_speed.py [--sequence blackswan] [--frames 50]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vos.frames import VIDEO_BACKENDS, FrameSourceError, open_frames  # noqa: E402

SHARED = Path(os.environ.get("SEEM_VOS_SHARED", ROOT.parent / "shared")) / "data"
DAVIS_FRAMES = SHARED / "davis2016" / "JPEGImages" / "480p"


def synthetic_480p(count: int) -> Iterable[np.ndarray]:
    """Moving gradients with noise, so the encoder cannot make the clip trivially cheap."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:854]
    for i in range(count):
        frame = np.stack([(x + 4 * i) % 256, (y + 2 * i) % 256, (x + y) // 6 % 256], axis=2).astype(np.uint8)
        yield np.clip(frame + rng.integers(0, 16, frame.shape), 0, 255).astype(np.uint8)


def encode_h264(path: Path, frames: Iterable[np.ndarray], fps: int = 24) -> int:
    """Encode RGB frames to an mp4 at a typical quality; returns the frame count."""
    count = 0
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "fast"}
        for frame in frames:
            if count == 0:
                stream.height, stream.width = frame.shape[:2]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            count += 1
        container.mux(stream.encode())
    return count


def frames_per_second(path: Path, backend: str | None, max_frames: int | None) -> tuple[float, float]:
    """(streaming fps, reverse random-access fps) for one source."""
    with open_frames(path, backend=backend, max_frames=max_frames) as source:
        start = time.perf_counter()
        streamed = sum(1 for _ in source)
        stream_fps = streamed / (time.perf_counter() - start)
        start = time.perf_counter()
        for i in reversed(range(len(source))):
            source[i]
        random_fps = len(source) / (time.perf_counter() - start)
    return stream_fps, random_fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence", default="blackswan", help="DAVIS sequence to encode")
    parser.add_argument("--frames", type=int, default=None, help="use at most this many frames")
    args = parser.parse_args()

    folder = DAVIS_FRAMES / args.sequence
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        if folder.is_dir():
            frames = open_frames(folder, max_frames=args.frames)
            what = f"DAVIS {args.sequence}"
        else:
            frames, folder = synthetic_480p(args.frames or 50), None
            what = "synthetic frames (no DAVIS data found)"
        count = encode_h264(clip, frames)
        print(f"clip: {count} frames of {what}, 854x480 H.264, {clip.stat().st_size / 1e6:.1f} MB")
        print(f"{'source':<8} {'stream fps':>11} {'random fps':>11}")
        sources = [("folder", folder)] if folder else []
        sources += [(name, clip) for name in VIDEO_BACKENDS]
        for name, path in sources:
            try:
                stream_fps, random_fps = frames_per_second(path, name, args.frames)
            except FrameSourceError as err:
                print(f"{name:<8} unavailable: {err}")
                continue
            print(f"{name:<8} {stream_fps:11.1f} {random_fps:11.1f}")


if __name__ == "__main__":
    main()
