"""The whole model against the official implementation's recorded run (golden data).

Every ``tiny_*`` variant is built from its official ``config.yaml``, loads the
official ``state_dict.pt`` strictly and is fed the recorded input frames. The
chain runs stage by stage exactly as the video path does (preprocess, backbone,
pixel decoder, decoder inputs, referring-image prompt, per-frame decoding,
matching, final mask), and each stage's output is compared with the recorded
tensor. Later stages consume *our* earlier outputs, so errors cannot hide behind
golden inputs.

Demo-architecture variants are compared end to end. For v1 variants the official
code has no video path (golden README 7.5): their backbone, pixel decoder,
decoder inputs and preprocessing are compared; the recorded interactive-path
tensors (``V1_INTERACTIVE``) are compared by tests/test_golden_interactive.py.
"""
from __future__ import annotations

import pytest
import torch

from conftest import GoldenVariant, assert_close, compare_stage, is_diagnostic
from seem_core.decoder import mask_logits
from seem_core.segmenter import SEEMSegmenter
from seem_core.query_selection import embedding_scores
from seem_core.preprocess import frame_geometry, logits_to_frame, normalize_and_pad, resize_frame, resize_masks
from seem_core.visual_sampler import PointSampler

# Golden README 9: final masks are compared where the logit is clearly away from 0.
MASK_MARGIN = 1e-4

# Recorded by the official v1 interactive call (v1 variants have no video path): compared by
# tests/test_golden_interactive.py.
V1_INTERACTIVE = ("ref.rand_sample_out.", "ref.out.", "f2.spatial_query_pos_mask.", "f2.rand_sample_out.",
                  "f2.query_rand_idx.", "f2.spatial_pre.", "f2.spatial.", "f2.interactive_single.")
# Inputs, not outputs.
INPUTS = ("input.",)
# Checked by the language tests (tests/test_golden_language.py).
LANGUAGE = ("text.",)


def is_demo(variant: GoldenVariant) -> bool:
    return variant.config.decoder_name == "seem_demo"


def reference_seed(variant: GoldenVariant) -> int:
    """The seed the official run set right before the referring-image step (golden README 6.4)."""
    return int(variant.meta["seeds"]["referring_image"])


def seq_first(x: torch.Tensor) -> torch.Tensor:
    """(B, L, C) -> the official (L, B, C) layout of decoder tensors."""
    return x.transpose(0, 1)


def run_frame(model, frame_uint8: torch.Tensor, short_side: int) -> dict:
    """Preprocess, backbone, pixel decoder and decoder inputs for one recorded frame."""
    frame = frame_uint8.numpy()
    geometry = frame_geometry(*frame.shape[:2], short_side, model.cfg.size_divisibility, model.cfg.max_input_side)
    resized = resize_frame(frame, short_side, model.cfg.max_input_side)
    images = normalize_and_pad(resized, model.pixel_mean, model.pixel_std, geometry.padded)
    backbone = model.backbone(images)
    mask_features, multi_scale = model.sem_seg_head.pixel_decoder(backbone)
    return dict(geometry=geometry, resized=torch.from_numpy(resized.copy()), images=images, backbone=backbone,
                mask_features=mask_features, multi_scale=multi_scale,
                levels=model.decoder.level_features(multi_scale))


def feature_outputs(out: dict) -> dict:
    """A frame's preprocessing and feature stages, in the golden naming (without the frame prefix)."""
    return {
        "image_resized_uint8_hwc": out["resized"],
        "images_tensor": out["images"],
        **{f"backbone.{k}": v for k, v in out["backbone"].items()},
        "pixel_decoder.mask_features": out["mask_features"],
        **{f"pixel_decoder.multi_scale_features.{i}": x for i, x in enumerate(out["multi_scale"])},
        **{f"decoder_in.src.{i}": seq_first(level.src) for i, level in enumerate(out["levels"])},
    }


def compare_prefixes(variant: GoldenVariant, produced: dict, prefixes: tuple[str, ...]) -> None:
    """``compare_stage`` for each prefix over ``produced`` (full golden keys)."""
    for prefix in prefixes:
        compare_stage(variant, prefix, {k[len(prefix):]: v for k, v in produced.items() if k.startswith(prefix)})


# Stages compared for v1 variants (their decoder call is the interactive one).
V1_COMPARED = ("ref.image_resized_uint8_hwc", "ref.rand_shape", "ref.images_tensor", "ref.img_shape",
               "ref.backbone.", "ref.pixel_decoder.", "ref.decoder_in.src.", "f2.image_resized_uint8_hwc",
               "f2.images_tensor", "f2.backbone.", "f2.pixel_decoder.", "f2.decoder_in.")


@torch.inference_mode()
def test_golden_chain(golden_variant: GoldenVariant, model) -> None:
    io = golden_variant.io
    short_side = int(io["input.resize_short_side"])
    ref = run_frame(model, io["input.frame1_uint8_hwc"], short_side)
    mask = resize_masks(io["input.ref_mask_uint8_hw"][None] > 0, ref["geometry"])
    height, width = ref["geometry"].resized
    produced = {f"ref.{k}": v for k, v in feature_outputs(ref).items()}
    produced["ref.rand_shape"] = mask[:, None, :height, :width]
    produced["ref.img_shape"] = torch.tensor(ref["images"].shape)

    f2 = run_frame(model, io["input.frame2_uint8_hwc"], short_side)
    produced.update({f"f2.{k}": v for k, v in feature_outputs(f2).items()})
    produced.update({f"f2.decoder_in.pos.{i}": seq_first(level.pos) for i, level in enumerate(f2["levels"])})
    if not is_demo(golden_variant):
        compare_prefixes(golden_variant, produced, V1_COMPARED)
        return

    prompt, prompt_outputs = reference_prompt(model, ref, mask, reference_seed(golden_variant))
    produced.update({f"ref.{k}": v for k, v in prompt_outputs.items()})
    # Frame 1 is the reference frame itself: its features are the reference's.
    produced.update({
        "f1.image_resized_uint8_hwc": ref["resized"],
        "f1.decoder_in.src.0": seq_first(ref["levels"][0].src),
        "f1.image_size": torch.tensor(ref["images"].shape),
        "f2.image_size": torch.tensor(f2["images"].shape),
    })
    for stage, frame in (("f1", ref), ("f2", f2)):
        produced.update({f"{stage}.{k}": v
                         for k, v in per_frame_outputs(model, frame, prompt, golden_variant, stage).items()})
    compare_prefixes(golden_variant, produced, ("ref.", "f1.", "f2."))


def reference_prompt(model, ref: dict, mask: torch.Tensor, seed: int) -> tuple:
    """The referring-image prompt, and its outputs and random point draws in the golden naming."""
    sampler = PointSampler(torch.Generator().manual_seed(seed), keep=True)
    prompt = model.decoder.encode_prompt(ref["mask_features"], ref["levels"], mask, sampler=sampler)
    out = {
        "out.visual_query_pos": prompt.query[:, None],
        "out.visual_query_neg": prompt.negative_query[:, None],
        **{f"out.src_visual_queries.{i}": seq_first(t) for i, t in enumerate(prompt.tokens)},
        **{f"out.src_visual_maskings.{i}": p for i, p in enumerate(prompt.padding)},
    }
    # Golden layout of a draw: [2, n], rows y / padded H and x / padded W.
    out.update({f"rand_sample_out.{k}": points.T for k, points in enumerate(sampler.draws)})
    return prompt, out


def per_frame_outputs(model, frame: dict, prompt, variant: GoldenVariant, stage: str) -> dict:
    """Per-frame decoding, matching and the final mask, in the golden naming."""
    output = model.decoder(frame["mask_features"], frame["levels"], prompt, class_logits=True, keep_aux=True)
    out = {}
    steps = [*output.aux, output]
    for j, step in enumerate(steps):
        name = "demo." if j == len(steps) - 1 else f"demo.aux_outputs.{j}."
        out[name + "pred_logits"] = step.class_logits
        out[name + "pred_maskembs"] = step.mask_embeddings
        out[name + "pred_pvisuals"] = prompt.query[:, None]
        out[name + "pred_nvisuals"] = prompt.negative_query[:, None]
    scores = embedding_scores(output.mask_embeddings, prompt.query)
    best = scores.argmax(dim=1)
    top2 = scores[0].topk(2).values
    chosen = output.mask_embeddings[0, best]
    logits = logits_to_frame(mask_logits(frame["mask_features"], chosen[None])[:, 0], frame["geometry"],
                             to_original=False)[0]
    expected_logits = variant.io.get(f"{stage}.match.upsampled_logits")
    golden_mask = variant.io[f"{stage}.final_mask"]
    # Compare the binary mask only where the logit is clearly away from the threshold.
    confident = (logits.abs() > MASK_MARGIN)[None]
    out.update({
        "match.pred_logits": scores[..., None],
        "match.idx": best,
        "match.pred_class": output.class_logits[0, best].argmax(-1),
        "match.top2_gap": top2[0] - top2[1],
        "final_mask": torch.where(confident, logits[None] > 0, golden_mask),
    })
    if expected_logits is not None:
        out["match.upsampled_logits"] = logits[None]
    assert confident.float().mean() > 0.999, f"{stage}: too many near-zero logits to compare the mask"
    return out


def test_golden_every_recorded_tensor_has_a_stage(golden_variant: GoldenVariant) -> None:
    """Each recorded tensor is compared by the chain test, or is listed here with the reason it is not."""
    keys = set(golden_variant.io)
    skipped = INPUTS + LANGUAGE
    compared = ("ref.", "f1.", "f2.") if is_demo(golden_variant) else V1_COMPARED + V1_INTERACTIVE
    uncovered = sorted(k for k in keys
                       if not k.startswith(skipped) and not k.startswith(compared) and not is_diagnostic(k))
    assert not uncovered, f"{golden_variant.name}: recorded tensors no test compares: {uncovered}"


@torch.inference_mode()
def test_golden_segmenter_api_gives_the_final_mask(golden_variant: GoldenVariant, model) -> None:
    """The public segmenter reproduces the official final mask at the resized resolution."""
    if not is_demo(golden_variant):
        pytest.skip(f"{golden_variant.name}: v1 architectures have no official video path (golden README 7.5)")
    io = golden_variant.io
    segmenter = SEEMSegmenter(model, short_side=int(io["input.resize_short_side"]))
    reference = segmenter.encode_frame(io["input.frame1_uint8_hwc"].numpy())
    prompt = segmenter.encode_reference(reference, io["input.ref_mask_uint8_hw"][None].numpy() > 0,
                                        generator=torch.Generator().manual_seed(reference_seed(golden_variant)))
    result = segmenter.segment(io["input.frame2_uint8_hwc"].numpy(), prompt, to_original=False)
    assert int(result.query_index[0]) == int(io["f2.match.idx"][0])
    confident = result.logits.abs() > MASK_MARGIN
    assert_close(result.logits, io["f2.match.upsampled_logits"], "segmenter logits")
    golden = io["f2.final_mask"]
    assert torch.equal(result.masks[confident], golden[confident])
