"""How far reduced precision moves SEEM's outputs from float32, and what it saves.

For each golden variant (official weights of the tiny models, recorded frames) and for
full-size models with random weights (synthetic 480x854 frame), the same frame is
segmented in float32 and in ``--precision`` (autocast: bf16 on CPU or CUDA, fp16 on
CUDA), against the same referring prompt. Printed per model: per-frame seconds of both
(median of ``--runs``, side by side), the max and mean absolute mask-logit difference,
and the fraction of pixels whose mask flips among those with |logit| > ``--margin`` in
float32 (pixels near 0 flip on float noise alone).

    python benchmarks/precision_deviation.py [--precision bf16] [--device cpu] [--models focalt]
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
GOLDEN_DIR = Path(os.environ.get("SEEM_GOLDEN_DIR", Path(os.environ.get("SEEM_VOS_SHARED", ROOT.parent / "shared"))
                                 / "golden"))


def cases(models: list[str]):
    """(name, model factory, frame, mask, short side) for each golden variant and full-size model."""
    import torch

    from seem_core.checkpoint import load_checkpoint
    from seem_core.model import build_model
    from seem_latency import synthetic_frame_and_mask
    from vos.models import model_spec

    for folder in sorted(GOLDEN_DIR.glob("tiny_*")):
        if (folder / "io.pt").is_file():
            io = torch.load(folder / "io.pt", weights_only=True)

            def golden(folder=folder):
                model = build_model(folder / "config.yaml")
                load_checkpoint(model, folder / "state_dict.pt")
                return model

            yield (folder.name, golden, io["input.frame2_uint8_hwc"].numpy(), io["input.ref_mask_uint8_hw"][None].numpy() > 0,
                   int(io["input.resize_short_side"]))
    frame, mask = synthetic_frame_and_mask()
    for name in models:
        architecture = model_spec(f"seem_{name}").architecture

        def full(architecture=architecture):
            with torch.random.fork_rng():
                torch.manual_seed(0)
                return build_model(architecture)

        yield f"seem_{name} (random)", full, frame, mask, 512


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="*", default=["focalt"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--margin", type=float, default=1e-2)
    args = parser.parse_args()

    import torch

    from seem_core.segmenter import SEEMSegmenter

    torch.set_num_threads(2)
    print(f"{args.precision} vs fp32 on {args.device}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'model':24} {'fp32 s':>7} {args.precision + ' s':>7} {'speed-up':>8} {'max |dlogit|':>13} "
          f"{'mean |dlogit|':>14} {'flipped':>9}")
    for name, factory, frame, mask, short_side in cases(args.models):
        model = factory()
        segmenters = [SEEMSegmenter(model, device=args.device, precision=p, short_side=short_side)
                      for p in ("fp32", args.precision)]
        prompt = segmenters[0].encode_reference(frame, mask, generator=torch.Generator().manual_seed(0))
        times: list[list[float]] = [[], []]
        results = [None, None]
        for _ in range(args.runs + 1):
            for k, segmenter in enumerate(segmenters):
                start = time.perf_counter()
                results[k] = segmenter.segment(frame, prompt).logits.float()
                times[k].append(time.perf_counter() - start)
        reference, reduced = results
        diff = (reference - reduced).abs()
        confident = reference.abs() > args.margin
        flipped = ((reference > 0) != (reduced > 0)) & confident
        fp32, low = statistics.median(times[0][1:]), statistics.median(times[1][1:])
        print(f"{name:24} {fp32:7.3f} {low:7.3f} {fp32 / low:7.2f}x {float(diff.max()):13.4f} "
              f"{float(diff.mean()):14.5f} {float(flipped.sum()) / max(int(confident.sum()), 1):9.4%}")


if __name__ == "__main__":
    main()
