"""Wall time of a benchmark run with executor=local vs executor=ray (N workers), and whether the masks agree.

Re-lays DAVIS-2016 sequences as a plain folder with ground truth (as the tests do) and runs
the tiny random model, or any registry model, through ``run_benchmark`` both ways. The Ray
time includes starting the local cluster and each worker loading the model:

    python benchmarks/executor_speed.py --sequences 4 --frames 20 --workers 2
    python benchmarks/executor_speed.py --model seem_focalt --short-side 480 --workers 8 --gpus-per-worker 1
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import vos  # noqa: E402
from eval.datasets import FolderLayout  # noqa: E402
from vos.benchmark import run_benchmark  # noqa: E402
from vos.settings import ExecutorSettings  # noqa: E402


def relay(davis: Path, root: Path, sequences: int, frames: int) -> FolderLayout:
    names = sorted(p.name for p in (davis / "JPEGImages/480p").iterdir())[:sequences]
    for name in names:
        for sub, suffix in (("JPEGImages", "jpg"), ("Annotations", "png")):
            folder = root / sub / name
            folder.mkdir(parents=True)
            for t in range(frames):
                (folder / f"{t:05d}.{suffix}").symlink_to(davis / sub / "480p" / name / f"{t:05d}.{suffix}")
    return FolderLayout(root, ground_truth=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--davis", type=Path, default=ROOT.parent / "shared/data/davis2016")
    parser.add_argument("--sequences", type=int, default=4)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--model", default="seem_tiny_random")
    parser.add_argument("--short-side", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gpus-per-worker", type=float, default=0.0)
    args = parser.parse_args()
    make_tracker = functools.partial(vos.load, args.model, short_side=args.short_side, device=args.device)
    with tempfile.TemporaryDirectory() as tmp:
        layout = relay(args.davis, Path(tmp) / "data", args.sequences, args.frames)
        timings, outputs = {}, {}
        for kind in ("local", "ray"):
            out = Path(tmp) / kind
            executor = ExecutorSettings(kind, None, args.workers, args.gpus_per_worker, 1)
            started = time.perf_counter()
            results = run_benchmark(make_tracker(), layout, out, executor=executor, make_tracker=make_tracker)
            timings[kind] = round(time.perf_counter() - started, 2)
            outputs[kind] = ({str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.png"))},
                             results["global"]["J&F-Mean"])
    print(json.dumps({"sequences": args.sequences, "frames_each": args.frames, "model": args.model,
                      "short_side": args.short_side, "workers": args.workers, "wall_seconds": timings,
                      "masks_identical": outputs["local"][0] == outputs["ray"][0],
                      "J&F_identical": outputs["local"][1] == outputs["ray"][1]}, indent=1))


if __name__ == "__main__":
    main()
