"""What a text prompt adds per frame, on a full-size model with random weights (CPU or GPU).

Per frame, side by side in one process (rounds alternate so load drifts hit both alike):
the referring-image step the video path runs on every frame, the same step with the
object's text as a second prompt (``text_every_frame`` or text + mask), and the text
alone (an object not found yet). The backbone and pixel decoder run in each (a frame
is encoded once per step), so the differences are the decoder's cost of the grounding
tokens. The text encoder pass is once per expression and reported apart.

    python benchmarks/text_prompt_cost.py [--model seem_focalt] [--rounds 3] [--device cpu]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="seem_focalt")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--text", default="the orange striped ball")
    args = parser.parse_args()

    import torch

    from seem_core.segmenter import ObjectPrompt
    from seem_latency import synthetic_frame_and_mask
    from vos.models import ModelSpec, load_segmenter, model_spec

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    spec = model_spec(args.model)
    segmenter = load_segmenter(ModelSpec(spec.architecture, "random", spec.name), device=args.device)
    frame, mask = synthetic_frame_and_mask()
    reference = segmenter.encode_reference(frame, mask)
    started = time.perf_counter()
    text = segmenter.encode_text([args.text])
    text_seconds = time.perf_counter() - started
    steps = {
        "reference": lambda: segmenter.segment(frame, reference),
        "reference + text": lambda: segmenter.segment_objects(frame, [ObjectPrompt(reference=reference, text=text)]),
        "text alone": lambda: segmenter.segment_objects(frame, [ObjectPrompt(text=text)]),
    }
    for step in steps.values():  # warm-up
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            started = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - started)
    load = os.getloadavg()[0]
    base = statistics.median(times["reference"])
    print(f"{args.model}, random weights, {args.device}, 480x854 frame, {args.rounds} rounds, "
          f"load average {load:.1f} on {os.cpu_count()} cores")
    print(f"text encoder, once per expression: {text_seconds * 1000:.0f} ms")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:>18}: {median:.3f} s/frame (rounds: {', '.join(f'{v:.3f}' for v in values)}), "
              f"{(median - base) / base * 100:+.1f} % vs reference")


if __name__ == "__main__":
    main()
