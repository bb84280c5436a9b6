"""How far Winograd convolutions and reduced precision move SEEM's outputs from float32, and what they save.

For each golden variant (official weights of the tiny models, recorded frames) and for
full-size models with random weights (synthetic 480x854 frame), the same frame is
segmented in float32 with direct convolutions (the reference: the official arithmetic)
and in each ``--modes`` entry, against the same referring prompt: ``winograd`` (float32,
the pixel decoder's large 3x3 convolutions by Winograd: the CPU default), ``bf16``
(autocast, CPU or CUDA), ``fp16`` (autocast, CUDA). Printed per model and mode: per-frame
seconds of both (median of ``--runs``, timed alternately), the max and mean absolute
mask-logit difference, and the fraction of pixels whose mask flips among those with
|logit| > ``--margin`` in the reference (pixels near 0 flip on float noise alone).

    python benchmarks/precision_deviation.py [--modes winograd bf16] [--device cpu] [--models focalt]
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


MODES = {"direct": {"precision": "fp32", "winograd": False}, "winograd": {"precision": "fp32", "winograd": True},
         "bf16": {"precision": "bf16"}, "fp16": {"precision": "fp16"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", nargs="+", default=["winograd", "bf16"], choices=[m for m in MODES if m != "direct"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="*", default=["focalt"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--margin", type=float, default=1e-2)
    args = parser.parse_args()

    import torch

    from seem_core.segmenter import SEEMSegmenter

    torch.set_num_threads(2)
    print(f"{', '.join(args.modes)} vs float32 with direct convolutions on {args.device}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'model':24} {'mode':>8} {'direct s':>8} {'mode s':>7} {'speed-up':>8} {'max |dlogit|':>13} "
          f"{'mean |dlogit|':>14} {'flipped':>9}")
    for name, factory, frame, mask, short_side in cases(args.models):
        model = factory()
        modes = ["direct", *args.modes]
        segmenters = [SEEMSegmenter(model, device=args.device, short_side=short_side, **MODES[m]) for m in modes]
        prompt = segmenters[0].encode_reference(frame, mask, generator=torch.Generator().manual_seed(0))
        times: list[list[float]] = [[] for _ in modes]
        results = [None for _ in modes]
        for _ in range(args.runs + 1):
            for k, segmenter in enumerate(segmenters):
                start = time.perf_counter()
                results[k] = segmenter.segment(frame, prompt).logits.float()
                times[k].append(time.perf_counter() - start)
        reference = results[0]
        confident = reference.abs() > args.margin
        direct = statistics.median(times[0][1:])
        for mode, result, spent in zip(modes[1:], results[1:], times[1:]):
            diff = (reference - result).abs()
            flipped = ((reference > 0) != (result > 0)) & confident
            seconds = statistics.median(spent[1:])
            print(f"{name:24} {mode:>8} {direct:8.3f} {seconds:7.3f} {direct / seconds:7.2f}x "
                  f"{float(diff.max()):13.2e} {float(diff.mean()):14.2e} "
                  f"{float(flipped.sum()) / max(int(confident.sum()), 1):9.4%}")


if __name__ == "__main__":
    main()
