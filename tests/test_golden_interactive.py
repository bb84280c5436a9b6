"""The official v1 interactive call (``evaluate_interactive_single``) against the recorded run.

For every v1 variant (golden README 7.5): the referring step on frame 1 (v1 spatial
prompt: sorted uniform point draws, -1 for an empty mean), then on frame 2 the
reference mask as a positive spatial prompt: its point draws, the random choice of
the object queries copied as spatial queries, every decoder step of object and
spatial queries, the chosen spatial query's mask and the final masks at both sizes.
Stages are fed with our own earlier outputs; the random draws are replayed from the
seeds in ``meta.json``. Then the public ``SEEMSegmenter.segment_objects`` call.
"""
from __future__ import annotations

import pytest
import torch

from conftest import GoldenVariant, compare_stage
from seem_core.decoder import mask_logits
from seem_core.preprocess import logits_to_frame, resize_masks
from seem_core.segmenter import ObjectPrompt, SEEMSegmenter
from seem_core.spatial_prompts import mask as mask_prompt
from seem_core.visual_sampler import SortedPointSampler
from test_golden_model import MASK_MARGIN, V1_INTERACTIVE, is_demo, reference_seed, run_frame, seq_first

def golden_draws(sampler: SortedPointSampler) -> dict[str, torch.Tensor]:
    """The v1 layout of the draws: [3, n], rows mask index (0: one mask per call), y, x."""
    out = {}
    for k, points in enumerate(sampler.draws):
        out[f"rand_sample_out.{k}"] = torch.cat([points.new_zeros(1, len(points)), points.T]) if len(points) \
            else torch.zeros(3, 0, dtype=torch.long)
    return out


def frame2_seed(variant: GoldenVariant) -> int:
    return int(variant.meta["seeds"]["frame2"])


@torch.inference_mode()
def test_interactive_call_matches_official(golden_variant: GoldenVariant, model) -> None:
    if is_demo(golden_variant):
        pytest.skip(f"{golden_variant.name}: the demo decoder records the video path (test_golden_model)")
    io = golden_variant.io
    short_side = int(io["input.resize_short_side"])
    ref = run_frame(model, io["input.frame1_uint8_hwc"], short_side)
    f2 = run_frame(model, io["input.frame2_uint8_hwc"], short_side)
    reference_mask = io["input.ref_mask_uint8_hw"][None] > 0

    sampler = SortedPointSampler(torch.Generator().manual_seed(reference_seed(golden_variant)), keep=True)
    prompt = model.decoder.encode_prompt(ref["mask_features"], ref["levels"],
                                         resize_masks(reference_mask, ref["geometry"]), sampler=sampler)
    produced = {f"ref.{k}": v for k, v in golden_draws(sampler).items()}
    produced.update({
        "ref.out.spatial_query_pos": prompt.query[:, None],
        "ref.out.spatial_query_neg": prompt.negative_query[:, None],
        **{f"ref.out.src_spatial_queries.{i}": seq_first(t) for i, t in enumerate(prompt.tokens)},
        **{f"ref.out.src_spatial_maskings.{i}": p for i, p in enumerate(prompt.padding)},
    })

    # Frame 2: the reference mask as a positive spatial prompt (evaluate_interactive, mode 'best').
    generator = torch.Generator().manual_seed(frame2_seed(golden_variant))
    positive = resize_masks(reference_mask, f2["geometry"])
    sampler = SortedPointSampler(generator, keep=True)
    spatial = model.decoder.encode_prompt(f2["mask_features"], f2["levels"], positive, sampler=sampler)
    output = model.decoder.forward_interactive(f2["mask_features"], f2["levels"], spatial, generator,
                                               class_logits=True, keep_aux=True)
    produced.update({f"f2.{k}": v for k, v in golden_draws(sampler).items()})
    produced["f2.spatial_query_pos_mask.0"] = positive
    produced["f2.query_rand_idx.0"] = output.source_queries
    steps = list(zip(output.objects.steps, output.spatial.steps))
    for j, (objects, queries) in enumerate(steps):
        name = "f2.spatial_pre." if j == len(steps) - 1 else f"f2.spatial_pre.aux_outputs.{j}."
        produced.update({
            name + "pred_logits": objects.class_logits,
            name + "pred_captions": objects.captions,
            name + "pred_smaskembs": queries.mask_embeddings,
            name + "pred_stexts": queries.captions,
            name + "pred_pspatials": spatial.query[:, None],
            name + "pred_nspatials": spatial.negative_query[:, None],
        })
    smasks = mask_logits(f2["mask_features"], output.spatial.mask_embeddings)
    produced["f2.spatial_pre.pred_smasks"] = smasks
    best = int(output.best[0])
    produced["f2.spatial.prev_mask"] = smasks[:, best][:, None]
    # The official evaluation's "original" size is the resized frame (its dataset mapper resizes first),
    # so both recorded masks are at the resized size: bicubic to the padded size, crop, sigmoid > 0.5.
    logits = logits_to_frame(smasks[:, best], f2["geometry"], to_original=False, mode="bicubic")
    confident = logits.abs() > MASK_MARGIN
    assert confident.float().mean() > 0.999
    masks = torch.where(confident, logits > 0, io["f2.interactive_single.pred_mask_ori"])
    produced["f2.interactive_single.pred_mask_ori"] = masks
    produced["f2.interactive_single.pred_mask_batch"] = masks[:, None]
    for prefix in V1_INTERACTIVE:
        compare_stage(golden_variant, prefix, {k[len(prefix):]: v for k, v in produced.items()
                                               if k.startswith(prefix)})

    # The public API: a drawn mask as the spatial prompt, the same seed.
    segmenter = SEEMSegmenter(model, short_side=short_side)
    result = segmenter.segment_objects(io["input.frame2_uint8_hwc"].numpy(),
                                       [ObjectPrompt(spatial=mask_prompt(reference_mask[0].numpy()))],
                                       generator=torch.Generator().manual_seed(frame2_seed(golden_variant)),
                                       to_original=False)
    assert result.rules == ("spatial",) and int(result.query_index[0]) == best
    confident = result.logits.abs() > MASK_MARGIN
    golden = io["f2.interactive_single.pred_mask_ori"]
    assert torch.equal(result.masks[confident], golden[confident])
