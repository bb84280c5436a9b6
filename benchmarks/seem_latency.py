"""Latency and memory of the full-size SEEM models on the video path, side by side with the official code.

For Focal-T, Focal-L, SAM-ViT-B and SAM-ViT-L (random weights), each measurement in its
own process so peak memory is its own: start-up (build + load a checkpoint file +
segmenter), the referring-image step, the per-frame step (features + decoding against
the prompt + mask at frame size) with its stage split (backbone / pixel decoder /
decoder / resize+mask), the per-frame cost for 1, 2, 5 and 10 objects, and the peak
resident memory of the inference steps, on a synthetic 480x854 frame resized as the
demo does (512x910, padded 512x928; SAM-ViT: padded 1024x1024).

Absolute CPU times differ up to 2x between machines and with load, so the official
code is timed in the same run: when its environment exists (built by
``../shared/tools/official_seem/setup.sh``), rounds alternate official, ours,
official, ours... and each round prints both medians, the ratio and how many cores the
whole machine was busy with meanwhile (ideally 2.0: the measured process's 2 threads).

    python benchmarks/seem_latency.py [--models focalt focall samvitb samvitl] [--rounds 3] [--runs 5]
        [--objects 1 2 5 10] [--device cuda] [--precision bf16] [--no-winograd] [--json out.json]
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
SHARED_DIR = Path(os.environ.get("SEEM_VOS_SHARED", ROOT.parent / "shared"))
OFFICIAL_TIMER = SHARED_DIR / "tools" / "official_seem" / "time_official.py"
OFFICIAL_PYTHON = Path(os.environ.get("OFFICIAL_SEEM_ROOT", Path(os.environ.get("TMPDIR", "/tmp")) / "official_seem")) \
    / "venv" / "bin" / "python"
OFFICIAL_MODELS = ("focalt", "focall")  # the official demo architectures time_official.py times
MODELS = ("focalt", "focall", "samvitb", "samvitl")  # configs/model/seem_<name>.yaml


def synthetic_frame_and_mask(height: int = 480, width: int = 854, objects: int = 1):
    """A frame with an orange ellipse and ``objects`` masks: the ellipse, then shifted copies."""
    import numpy as np

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:height, :width]
    frame = np.stack([(xx * 255 // width), (yy * 255 // height), rng.integers(0, 255, (height, width))], -1)
    masks = []
    for k in range(objects):
        cx = width * (0.45 + 0.04 * k) % width
        masks.append(((yy - height * 0.5) / (height * 0.25)) ** 2 + ((xx - cx) / (width * 0.2)) ** 2 < 1)
    frame[masks[0]] = [230, 120, 40]
    return frame.astype(np.uint8), np.stack(masks)


def measure(size: str, runs: int, device: str, precision: str, winograd: bool, objects: list[int]) -> dict:
    """One model in this process: start-up, reference step, per-frame step and its stages, peak RSS."""
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
        segmenter = SEEMSegmenter(model, device=device, precision=precision, winograd=winograd)
        startup = time.perf_counter() - start

    frame, mask = synthetic_frame_and_mask()
    reset_peak_rss()

    def timed(step) -> float:
        start = time.perf_counter()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    holder = {}
    reference = timed(lambda: holder.update(prompt=segmenter.encode_reference(
        frame, mask, generator=torch.Generator().manual_seed(0))))
    prompt = holder["prompt"]
    times = [timed(lambda: segmenter.segment(frame, prompt)) for _ in range(runs + 1)][1:]  # one warm-up
    result = {
        "per_frame_median_s": statistics.median(times),
        "per_frame_runs_s": times,
        "stages_s": stage_split(segmenter, frame, prompt, timed),
        "reference_s": reference,
        "startup_s": startup,
        "peak_rss_mb": step_peak_rss_mb(),
    }
    per_objects = {}
    for count in objects:
        many = segmenter.encode_reference(frame, synthetic_frame_and_mask(objects=count)[1],
                                          generator=torch.Generator().manual_seed(0))
        encoded = segmenter.encode_frame(frame)
        decode = [timed(lambda: segmenter.segment(encoded, many)) for _ in range(3)][1:]
        per_objects[str(count)] = {"decode_s": statistics.median(decode),
                                   "per_frame_s": result["stages_s"]["backbone"] +
                                   result["stages_s"]["pixel_decoder"] + statistics.median(decode)}
    result["objects"] = per_objects
    return result


def stage_split(segmenter, frame, prompt, timed) -> dict[str, float]:
    """Median seconds of each stage of the per-frame step (3 runs), timed one after the other."""
    from seem_core.decoder import mask_logits
    from seem_core.preprocess import logits_to_frame
    from seem_core.query_selection import embedding_scores

    model = segmenter.model
    stages: dict[str, list[float]] = {"resize": [], "backbone": [], "pixel_decoder": [], "decoder": [],
                                      "mask": []}
    state = {}
    with segmenter._inference():
        for _ in range(3):
            stages["resize"].append(timed(lambda: state.update(zip(("geometry", "image"), segmenter.preprocess(frame)))))
            stages["backbone"].append(timed(lambda: state.update(features=model.backbone(state["image"]))))
            stages["pixel_decoder"].append(timed(lambda: state.update(
                decoded=model.sem_seg_head.pixel_decoder(state["features"]))))

            def decoder_step():
                levels = model.decoder.level_features(state["decoded"][1])
                state["output"] = model.decoder(state["decoded"][0], levels, prompt)

            stages["decoder"].append(timed(decoder_step))

            def mask_step():
                output = state["output"]
                best = embedding_scores(output.mask_embeddings, prompt.query).argmax(dim=1)
                chosen = output.mask_embeddings[0, best][None]
                logits_to_frame(mask_logits(state["decoded"][0], chosen)[:, 0], state["geometry"])

            stages["mask"].append(timed(mask_step))
    return {name: statistics.median(values) for name, values in stages.items()}


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


def cpu_counters() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def run_round(command: list[str]) -> tuple[str, float]:
    """Run one measuring process; its output and how many cores the machine was busy with meanwhile."""
    busy0, total0 = cpu_counters()
    out = subprocess.run(command, capture_output=True, text=True)
    busy1, total1 = cpu_counters()
    if out.returncode:
        sys.exit(f"{' '.join(command[:3])}...: measurement failed (exit {out.returncode}):\n{out.stderr.strip()[-2000:]}")
    cores = (busy1 - busy0) / max(total1 - total0, 1) * (os.cpu_count() or 1)
    return out.stdout, cores


def official_round(size: str, runs: int) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "official.json"
        _, cores = run_round([str(OFFICIAL_PYTHON), str(OFFICIAL_TIMER), "--models", size, "--runs", str(runs),
                              "--json", str(target)])
        return json.loads(target.read_text())[size], cores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["focalt", "focall"])
    parser.add_argument("--rounds", type=int, default=3, help="alternating official/ours rounds per model")
    parser.add_argument("--runs", type=int, default=5, help="timed per-frame runs after one warm-up, per round")
    parser.add_argument("--objects", type=int, nargs="*", default=[1, 2, 5, 10])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--winograd", action=argparse.BooleanOptionalAction, default=True,
                        help="CPU float32: Winograd for the pixel decoder's large 3x3 convolutions (the default)")
    parser.add_argument("--no-official", action="store_true", help="time ours only")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one model in this process
    args = parser.parse_args()

    if args.one:
        print(json.dumps(measure(args.one, args.runs, args.device, args.precision, args.winograd, args.objects)))
        return
    with_official = not args.no_official and args.device == "cpu" and OFFICIAL_PYTHON.is_file() \
        and OFFICIAL_TIMER.is_file()
    if not with_official and not args.no_official:
        print(f"(official code not timed: no environment at {OFFICIAL_PYTHON}; build it with "
              f"{SHARED_DIR / 'tools/official_seem/setup.sh'})")
    ours_command = [sys.executable, __file__, "--runs", str(args.runs), "--device", args.device,
                    "--precision", args.precision, "--winograd" if args.winograd else "--no-winograd",
                    "--objects", *map(str, args.objects), "--one"]
    figures = {}
    print(f"device {args.device}, precision {args.precision}, winograd {args.winograd}, torch threads 2, "
          f"{os.cpu_count()} cores; "
          "'busy' = cores the whole machine used during the measurement (2.0 = only the measured process)")
    for size in args.models:
        rounds = []
        for number in range(args.rounds):
            row = {}
            if with_official and size in OFFICIAL_MODELS:
                row["official"], row["official_busy"] = official_round(size, args.runs)
            output, row["ours_busy"] = run_round(ours_command + [size])
            row["ours"] = json.loads(output.strip().splitlines()[-1])
            rounds.append(row)
            line = f"{size} round {number + 1}: ours {row['ours']['per_frame_median_s']:.2f} s/frame " \
                   f"(busy {row['ours_busy']:.1f})"
            if "official" in row:
                theirs = row["official"]["per_frame_median_s"]
                line += f", official {theirs:.2f} s (busy {row['official_busy']:.1f}), " \
                        f"ratio {row['ours']['per_frame_median_s'] / theirs:.2f}"
            print(line, flush=True)
        figures[size] = rounds
        print(summary(size, rounds), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


def summary(size: str, rounds: list[dict]) -> str:
    ours = [r["ours"] for r in rounds]
    median = lambda values: statistics.median(values)  # noqa: E731
    lines = [f"{size}: ours {median([o['per_frame_median_s'] for o in ours]):.2f} s/frame, reference step "
             f"{median([o['reference_s'] for o in ours]):.2f} s, start-up {median([o['startup_s'] for o in ours]):.2f} s, "
             f"peak {max(o['peak_rss_mb'] for o in ours):.0f} MB"]
    stages = ", ".join(f"{k} {median([o['stages_s'][k] for o in ours]):.2f}" for k in ours[0]["stages_s"])
    lines.append(f"  ours stages (s): {stages}")
    if "official" in rounds[0]:
        theirs = [r["official"] for r in rounds]
        ratios = [o["per_frame_median_s"] / t["per_frame_median_s"] for o, t in zip(ours, theirs)]
        official_stages = ", ".join(f"{k} {median([t['per_frame_stages_median_s'][k] for t in theirs]):.2f}"
                                    for k in theirs[0].get("per_frame_stages_median_s", {}))
        lines.append(f"  official {median([t['per_frame_median_s'] for t in theirs]):.2f} s/frame; stages (s): "
                     f"{official_stages}")
        lines.append(f"  ratio ours/official per round: {', '.join(f'{r:.2f}' for r in ratios)} "
                     f"(median {median(ratios):.2f})")
    objects = ", ".join(f"{k}: {median([o['objects'][k]['per_frame_s'] for o in ours]):.2f} s "
                        f"(decoder {median([o['objects'][k]['decode_s'] for o in ours]):.2f})"
                        for k in ours[0]["objects"])
    if objects:
        lines.append(f"  per frame by number of objects: {objects}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
