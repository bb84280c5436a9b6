"""The image demo's other prompt paths against the official run (``io_prompts.pt``, README_prompts.md).

Four calls on frame 2 of every variant that records them: text alone, stroke alone,
referring image + text, referring image + stroke. Each is run stage by stage as in
the video path's golden test (our own frame features, our own prompts, the official
seeds from ``meta.json``): text tensors, stroke mask and point draws, spatial tokens,
the self-attention mask, every decoder step (aux outputs included), the grounding
tokens after each layer, the selection rule's scores, the chosen query, the logits
at the resized frame and the final mask. Then the public ``SEEMSegmenter`` call must
give the same logits.
"""
from __future__ import annotations

import pytest
import torch

from conftest import GoldenVariant, assert_close, compare_stage, golden_variant_dirs, require_path, GOLDEN_DIR
from seem_core.checkpoint import load_checkpoint
from seem_core.decoder import DEMO_ATTENTION, mask_logits, self_attention_mask
from seem_core.model import build_model
from seem_core.preprocess import logits_to_frame, resize_masks
from seem_core.query_selection import embedding_scores, text_scores
from seem_core.segmenter import ObjectPrompt, SEEMSegmenter
from seem_core.spatial_prompts import model_masks, stroke
from seem_core.visual_sampler import PointSampler
from test_golden_model import MASK_MARGIN, run_frame, seq_first

CALLS = ("p_text", "p_stroke", "p_ref_text", "p_ref_stroke")


def prompt_variants() -> list:
    dirs = [d for d in golden_variant_dirs() if (d / "io_prompts.pt").is_file()]
    if not dirs:
        return [pytest.param(None, id="no-variant")]
    return [pytest.param(d, id=d.name) for d in dirs]


@pytest.fixture(scope="module", params=prompt_variants())
def case(request):
    """A variant's model, its frames' features and the recorded prompt tensors."""
    if request.param is None:
        require_path(GOLDEN_DIR / "tiny_*" / "io_prompts.pt", "golden prompt recordings (io_prompts.pt)")
    variant = GoldenVariant(request.param)
    model = build_model(variant.path / "config.yaml")
    load_checkpoint(model, variant.path / "state_dict.pt", strict=True)
    io = variant.io
    short_side = int(io["input.resize_short_side"])
    with torch.inference_mode():
        ref = run_frame(model, io["input.frame1_uint8_hwc"], short_side)
        f2 = run_frame(model, io["input.frame2_uint8_hwc"], short_side)
    return variant, model, ref, f2, short_side


def seeds(variant: GoldenVariant, call: str) -> tuple[int | None, int]:
    """(seed of the referring-image step or None, seed of the demo call)."""
    seed = variant.meta["prompts"]["seeds"][call]
    return (seed["referring_image"], seed["evaluate_demo"]) if isinstance(seed, dict) else (None, seed)


def sketch_prompt(variant: GoldenVariant):
    """The recorded stroke as a spatial prompt, from ``meta.json``'s polyline (row, col) and width."""
    (drawn,) = variant.meta["prompts"]["strokes"]
    size = tuple(variant.io["input.frame2_uint8_hwc"].shape[:2])
    return stroke([(col, row) for row, col in drawn["polyline_rc"]], drawn["width"], size)


def test_stroke_is_drawn_as_the_demo_canvas_draws_it(case):
    variant = case[0]
    assert torch.equal(sketch_prompt(variant).positive, variant.io_prompts["input.stroke_sketch_uint8_hw"])


@pytest.mark.parametrize("call", CALLS)
@torch.inference_mode()
def test_prompt_call_matches_official(case, call: str) -> None:
    variant, model, ref, f2, short_side = case
    recorded = variant.io_prompts
    ref_seed, demo_seed = seeds(variant, call)
    height, width = f2["geometry"].resized
    produced = {"data.height_width": torch.tensor([height, width]), "image_size": torch.tensor(f2["images"].shape)}
    visual = spatial = text = None
    if ref_seed is not None:  # the Example task: the video path's reference step, redone by the demo
        mask = resize_masks(variant.io["input.ref_mask_uint8_hw"][None] > 0, ref["geometry"])
        visual = model.decoder.encode_prompt(ref["mask_features"], ref["levels"], mask,
                                             sampler=PointSampler(torch.Generator().manual_seed(ref_seed)))
    if "stroke" in call:
        positive, negative = model_masks([sketch_prompt(variant)], f2["geometry"], model.dilation_kernel)
        sampler = PointSampler(torch.Generator().manual_seed(demo_seed), keep=True)
        spatial = model.decoder.encode_prompt(f2["mask_features"], f2["levels"], positive, negative, sampler=sampler)
        if call == "p_stroke":
            produced["data.stroke"] = positive[:, None, :height, :width]
        produced["extra.spatial_query_pos_mask.0"] = positive
        produced.update({f"rand_sample_out.{k}": points.T for k, points in enumerate(sampler.draws)})
        for i, (tokens, padding) in enumerate(zip(spatial.tokens, spatial.padding)):
            produced[f"decoder.spatial_tokens.{i}"] = seq_first(tokens)
            produced[f"decoder.spatial_maskings.{i}"] = padding
    if "text" in call:
        texts = [variant.meta["prompts"]["text"]]
        text = model.language.text_prompt(texts)
        if call == "p_text":
            embedded = model.language.token_embeddings(texts)
            produced.update({f"text.{k}": v for k, v in embedded.items()})
        produced["extra.grounding_tokens"] = seq_first(text.tokens)
        produced["extra.grounding_nonzero_mask"] = text.padding
        produced["extra.grounding_class"] = text.class_embedding

    # Level 0's self-attention sequence: object queries | grounding | spatial | visual tokens.
    groups = [("object", torch.zeros(1, model.decoder.cfg.num_queries, dtype=torch.bool))]
    groups += [("grounding", text.padding)] if text is not None else []
    groups += [(name, p.padding[0]) for name, p in (("spatial", spatial), ("visual", visual)) if p is not None]
    produced["decoder.self_attn_mask"] = self_attention_mask(groups, DEMO_ATTENTION)[0]

    output = model.decoder(f2["mask_features"], f2["levels"], visual, spatial=spatial, text=text,
                           class_logits=True, keep_aux=True)
    for j, step in enumerate(output.steps):
        name = "demo." if j == len(output.steps) - 1 else f"demo.aux_outputs.{j}."
        produced[name + "pred_logits"] = step.class_logits
        produced[name + "pred_maskembs"] = step.mask_embeddings
        if text is not None:
            produced[name + "pred_captions"] = step.captions
        for prompt, kind in ((spatial, "spatials"), (visual, "visuals")):
            if prompt is not None:
                produced[name + "pred_p" + kind] = prompt.query[:, None]
                produced[name + "pred_n" + kind] = prompt.negative_query[:, None]
    if text is not None:
        produced.update({f"decoder.grounding_tokens_after_layer.{i}": seq_first(tokens)
                         for i, tokens in enumerate(output.carried)})

    # The demo's rule order: stroke, then example, then text.
    if spatial is not None:
        scores = embedding_scores(output.mask_embeddings, spatial.query)
        produced["match.pred_logits"] = scores[..., None]
        if visual is not None:
            produced["unused.visual_pred_logits"] = embedding_scores(output.mask_embeddings, visual.query)[..., None]
    elif visual is not None:
        scores = embedding_scores(output.mask_embeddings, visual.query)
        produced["match.pred_logits"] = scores[..., None]
        produced["unused.text_out_prob"] = text_scores(output.captions, text.class_embedding,
                                                       model.language.logit_scale)[0, :, None]
    else:
        scores = text_scores(output.captions, text.class_embedding, model.language.logit_scale)
        produced["match.out_prob"] = scores[0, :, None]
        unit = lambda x: x / (x.norm(dim=-1, keepdim=True) + 1e-7)  # noqa: E731 - the README's normalisation
        produced["match.v_emb_norm"] = unit(output.captions[0])
        produced["match.t_emb_norm"] = unit(text.class_embedding)
    best = scores.argmax(dim=1)
    top2 = scores[0].topk(2).values
    logits = logits_to_frame(mask_logits(f2["mask_features"], output.mask_embeddings[0, best][None])[:, 0],
                             f2["geometry"], to_original=False)
    confident = logits.abs() > MASK_MARGIN
    golden_mask = recorded[f"{call}.final_mask"]
    produced.update({
        "match.idx": best,
        "match.pred_class": output.class_logits[0, best].argmax(-1),
        "match.top2_gap": top2[0] - top2[1],
        "match.upsampled_logits": logits,
        "final_mask": torch.where(confident, logits > 0, golden_mask),
    })
    assert confident.float().mean() > 0.999
    compare_stage(variant, f"{call}.", produced, recorded)

    # The public API: the same call through SEEMSegmenter.segment_objects.
    segmenter = SEEMSegmenter(model, short_side=short_side)
    reference = None
    if ref_seed is not None:
        reference = segmenter.encode_reference(variant.io["input.frame1_uint8_hwc"].numpy(),
                                               variant.io["input.ref_mask_uint8_hw"][None].numpy() > 0,
                                               generator=torch.Generator().manual_seed(ref_seed))
    prompt = ObjectPrompt(reference=reference, spatial=sketch_prompt(variant) if spatial is not None else None,
                          text=segmenter.encode_text(texts) if text is not None else None)
    result = segmenter.segment_objects(variant.io["input.frame2_uint8_hwc"].numpy(), [prompt],
                                       generator=torch.Generator().manual_seed(demo_seed), to_original=False)
    assert int(result.query_index[0]) == int(recorded[f"{call}.match.idx"][0])
    assert_close(result.logits, recorded[f"{call}.match.upsampled_logits"], f"{variant.name}:{call} segmenter logits")


def test_every_recorded_prompt_tensor_is_compared(case):
    """Every key of io_prompts.pt belongs to a call compared above (or is the stroke input)."""
    variant = case[0]
    uncovered = sorted(k for k in variant.io_prompts if not k.startswith(tuple(f"{c}." for c in CALLS))
                       and k != "input.stroke_sketch_uint8_hw")
    assert not uncovered, uncovered
