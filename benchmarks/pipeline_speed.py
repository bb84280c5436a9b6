"""Frames per second of the whole pipeline on one DAVIS sequence, stage by stage.

Full Focal-T size (random weights built from configs/model/seem_focalt.yaml), so
the numbers are those of a real run; the split shows which stage to optimise:

    python benchmarks/pipeline_speed.py --frames 10
    python benchmarks/pipeline_speed.py --sequence camel --device cuda --precision fp16
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seem_core.model import build_model  # noqa: E402
from seem_core.segmenter import SEEMSegmenter  # noqa: E402
from vos.frames import open_frames  # noqa: E402
from vos.masks import read_mask, write_mask  # noqa: E402
from vos.models import model_spec  # noqa: E402
from vos.propagate import PropagationConfig, Propagator  # noqa: E402
from vos.single_video import DEFAULT_FPS, score_against, write_overlay  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--davis", type=Path, default=ROOT.parent / "shared/data/davis2016")
    parser.add_argument("--sequence", default="blackswan")
    parser.add_argument("--frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--short-side", type=int, default=512)
    parser.add_argument("--memory", default="first")
    args = parser.parse_args()

    segmenter = SEEMSegmenter(build_model(model_spec("seem_focalt").architecture), device=args.device, precision=args.precision,
                              short_side=args.short_side)
    propagator = Propagator(segmenter, PropagationConfig(memory=args.memory))
    frames_dir = args.davis / "JPEGImages/480p" / args.sequence
    gt_dir = args.davis / "Annotations/480p" / args.sequence
    seconds: dict[str, float] = defaultdict(float)

    with tempfile.TemporaryDirectory() as out, open_frames(frames_dir, max_frames=args.frames) as frames:
        out = Path(out)
        stream = iter(frames)
        for index, name in enumerate(frames.names):
            start = time.perf_counter()
            frame = next(stream)
            annotation = read_mask(gt_dir / f"{name}.png") if index == 0 else None
            seconds["decode"] += time.perf_counter() - start

            start = time.perf_counter()
            labels = propagator.step(frame, annotation)
            seconds["model"] += time.perf_counter() - start

            start = time.perf_counter()
            write_mask(out / f"{name}.png", labels)
            seconds["write"] += time.perf_counter() - start

        start = time.perf_counter()
        score_against(gt_dir, out, frames.names, propagator.ids)
        seconds["evaluate"] = time.perf_counter() - start

        start = time.perf_counter()  # as run_vos.py writes it: from the written masks, frames decoded again
        write_overlay(out / "overlay.mp4", frames, out, frames.names, frames.fps or DEFAULT_FPS)
        seconds["overlay"] = time.perf_counter() - start

    count = len(frames)
    total = sum(seconds.values())
    print(f"{args.sequence}: {count} frames of {frames.size[1]}x{frames.size[0]}, Focal-T, short side "
          f"{args.short_side}, {args.device}/{args.precision}, memory={args.memory}")
    print(f"{'stage':<10}{'seconds':>10}{'ms/frame':>10}{'share':>8}")
    for stage, value in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"{stage:<10}{value:>10.2f}{1000 * value / count:>10.1f}{value / total:>8.1%}")
    print(f"whole pipeline: {count / total:.2f} frames/s (slowest stage: {max(seconds, key=seconds.get)})")


if __name__ == "__main__":
    main()
