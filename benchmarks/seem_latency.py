"""Latency and memory of the full-size SEEM models on the video path, against the official code.

For Focal-T, Focal-L, SAM-ViT-B and SAM-ViT-L (random weights), each in its
own process so peak memory is its own: start-up (build + load a checkpoint
file + segmenter), the referring-image step on the reference frame (features +
prompt), the per-frame step (features + decoding against the prompt + mask at
frame size), and the peak resident memory of those inference steps (weights
included; the start-up's transient copies excluded, and reported apart as the
process peak), on a synthetic 480x854 frame resized as the demo does (512x910,
padded 512x928 for FocalNet, 1024x1024 for SAM-ViT, whose input size is fixed).
The official figures come from ``timing_official_cpu.json`` in the golden
folder (same machine class, torch 2.13.0, 2 threads, float32; Focal only).

    python benchmarks/seem_latency.py [--models focalt focall samvitb samvitl] [--runs 5] [--json out.json]
        [--device cuda --precision bf16]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The golden folder as tests/conftest.py finds it (SEEM_GOLDEN_DIR, else $SEEM_VOS_SHARED/golden).
SHARED_DIR = Path(os.environ.get("SEEM_VOS_SHARED", ROOT.parent / "shared"))
OFFICIAL_TIMING = Path(os.environ.get("SEEM_GOLDEN_DIR", SHARED_DIR / "golden")) / "timing_official_cpu.json"
OFFICIAL_NAMES = {"focalt": "focalt_unicl_lang_demo", "focall": "focall_unicl_lang_demo"}
MODELS = ("focalt", "focall", "samvitb", "samvitl")  # configs/model/seem_<name>.yaml


def synthetic_frame_and_mask(height: int = 480, width: int = 854):
    import numpy as np

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:height, :width]
    frame = np.stack([(xx * 255 // width), (yy * 255 // height), rng.integers(0, 255, (height, width))], -1)
    mask = ((yy - height * 0.5) / (height * 0.25)) ** 2 + ((xx - width * 0.45) / (width * 0.2)) ** 2 < 1
    frame[mask] = [230, 120, 40]
    return frame.astype(np.uint8), mask[None]


def measure(size: str, runs: int, device: str, precision: str) -> dict:
    """One model in this process: start-up, reference step, per-frame step, peak RSS."""
    import torch
    import yaml

    from seem_core.checkpoint import load_checkpoint
    from seem_core.model import build_model
    from seem_core.segmenter import SEEMSegmenter

    torch.set_num_threads(2)
    architecture = yaml.safe_load((ROOT / f"configs/model/seem_{size}.yaml").read_text())["architecture"]
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / f"random_{size}.pt"
        torch.save(build_model(architecture).state_dict(), checkpoint)
        start = time.perf_counter()
        model = build_model(architecture)
        load_checkpoint(model, checkpoint)
        segmenter = SEEMSegmenter(model, device=device, precision=precision)
        startup = time.perf_counter() - start

    frame, mask = synthetic_frame_and_mask()
    reset_peak_rss()

    def synchronize():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    start = time.perf_counter()
    prompt = segmenter.encode_reference(frame, mask, generator=torch.Generator().manual_seed(0))
    synchronize()
    reference = time.perf_counter() - start

    times = []
    for _ in range(runs + 1):  # the first run warms up
        start = time.perf_counter()
        segmenter.segment(frame, prompt)
        synchronize()
        times.append(time.perf_counter() - start)
    return {
        "per_frame_median_s": statistics.median(times[1:]),
        "per_frame_min_s": min(times[1:]),
        "reference_s": reference,
        "startup_s": startup,
        "peak_rss_mb": step_peak_rss_mb(),
        "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def reset_peak_rss() -> None:
    """Start a new peak-RSS window (Linux), so the inference steps are measured apart from start-up."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def step_peak_rss_mb() -> float:
    """Peak resident memory since :func:`reset_peak_rss` (process peak where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def official() -> dict:
    if not OFFICIAL_TIMING.is_file():
        return {}
    results = json.loads(OFFICIAL_TIMING.read_text())["results"]
    return {size: results[name] for size, name in OFFICIAL_NAMES.items() if name in results}


def report(ours: dict, reference: dict) -> str:
    lines = [f"{'model':8} {'per-frame s':>12} {'official s':>11} {'speed-up':>9} {'reference s':>12} "
             f"{'official s':>11} {'start-up s':>11} {'official s':>11} {'peak MB':>8} {'official MB':>12}"]
    for size, mine in ours.items():
        theirs = reference.get(size, {})
        official_frame = theirs.get("evaluate_demo_median_s")
        official_startup = (theirs.get("build_s") or 0) + (theirs.get("text_embeddings_setup_s") or 0) or None
        fmt = lambda v, spec=".2f": format(v, spec) if v is not None else "n/a"  # noqa: E731
        lines.append(
            f"{size:8} {mine['per_frame_median_s']:12.2f} {fmt(official_frame):>11} "
            f"{fmt(official_frame / mine['per_frame_median_s'] if official_frame else None):>8}x "
            f"{mine['reference_s']:12.2f} {fmt(theirs.get('referring_image_s')):>11} "
            f"{mine['startup_s']:11.2f} {fmt(official_startup):>11} "
            f"{mine['peak_rss_mb']:8.0f} {fmt(theirs.get('peak_rss_mb'), '.0f'):>12}")
    if not reference:
        lines.append(f"(official timing not found at {OFFICIAL_TIMING})")
    else:
        lines.append("official start-up = model build + the 134-class x 81-template text embedding "
                     "(Focal-L's was skipped there); ours embeds classes lazily, never on the video path")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--runs", type=int, default=5, help="timed per-frame runs after one warm-up")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one model in this process
    args = parser.parse_args()

    if args.one:
        print(json.dumps(measure(args.one, args.runs, args.device, args.precision)))
        return
    ours = {}
    for size in args.models:
        out = subprocess.run([sys.executable, __file__, "--one", size, "--runs", str(args.runs), "--device",
                              args.device, "--precision", args.precision],
                             capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"{size}: measurement failed (exit {out.returncode}):\n{out.stderr.strip()}")
        ours[size] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{size}: {ours[size]}", flush=True)
    print(f"\ndevice {args.device}, precision {args.precision}, torch threads 2")
    print(report(ours, official()))
    if args.json:
        args.json.write_text(json.dumps(ours, indent=2))


if __name__ == "__main__":
    main()
