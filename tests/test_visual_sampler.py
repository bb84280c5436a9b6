"""Visual sampler and decoder batching on hand-made cases (no reference data needed)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from seem_core.attention import SelfAttentionLayer
from seem_core.config import DecoderConfig
from seem_core.decoder import SEEMDecoder
from seem_core.query_selection import embedding_scores
from seem_core.visual_sampler import PointSampler, VisualPrompt, mask_points, masked_mean, sample_features

DIM = 16


@pytest.fixture(scope="module")
def decoder() -> SEEMDecoder:
    return random_decoder()


def random_decoder() -> SEEMDecoder:
    torch.manual_seed(0)
    cfg = DecoderConfig(hidden_dim=DIM, num_queries=7, nheads=2, dim_feedforward=32, num_layers=3,
                        max_spatial_len=(20, 20, 20, 20))
    model = SEEMDecoder(cfg, in_channels=DIM, mask_dim=DIM, dim_proj=DIM, lang_encoder=nn.Identity())
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model.eval()


def frame_features(decoder: SEEMDecoder, seed: int):
    g = torch.Generator().manual_seed(seed)
    mask_features = torch.randn(1, DIM, 16, 16, generator=g)
    levels = decoder.level_features([torch.randn(1, DIM, s, s, generator=g) for s in (2, 4, 8)])
    return mask_features, levels


def scores(output, prompt):
    return embedding_scores(output.mask_embeddings, prompt.query)


def test_points_are_row_major_normalised_by_the_padded_size():
    mask = torch.zeros(4, 8, dtype=torch.bool)
    mask[1, 2] = mask[3, 5] = True
    points = mask_points(mask, max_points=10, generator=None)
    assert points.tolist() == [[1 / 4, 2 / 8], [3 / 4, 5 / 8]]


def test_large_masks_draw_a_reproducible_subset():
    mask = torch.ones(10, 10, dtype=torch.bool)
    a = mask_points(mask, 7, torch.Generator().manual_seed(3))
    b = mask_points(mask, 7, torch.Generator().manual_seed(3))
    assert a.shape == (7, 2) and torch.equal(a, b)
    expected = torch.randperm(100, generator=torch.Generator().manual_seed(3))[:7]
    assert torch.equal(a, mask.nonzero()[expected].float() / 10)


def test_sampling_at_pixel_centres_reads_the_feature_and_means_skip_padding():
    features = torch.arange(2 * 3 * 3, dtype=torch.float32).view(1, 2, 3, 3)
    # align_corners=True: normalised (row, col) = (i / 2, j / 2) hits pixel (i, j) of a 3x3 map.
    points = [torch.tensor([[0.0, 0.5], [1.0, 1.0]]), torch.tensor([[0.5, 0.0]])]
    samples, padding = sample_features(features, points)
    assert padding.tolist() == [[False, False], [False, True]]
    assert samples[0, 0].tolist() == [1.0, 10.0] and samples[0, 1].tolist() == [8.0, 17.0]
    assert samples[1, 0].tolist() == [3.0, 12.0] and samples[1, 1].tolist() == [0.0, 0.0]
    assert masked_mean(samples, padding).tolist() == [[4.5, 13.5], [3.0, 12.0]]


@torch.inference_mode()
def test_objects_decoded_together_equal_objects_decoded_alone(decoder):
    """Padding of uneven prompts must not change any object's result."""
    mask_features, levels = frame_features(decoder, 0)
    masks = torch.zeros(2, 16, 16, dtype=torch.bool)
    masks[0, 2:9, 3:12] = True  # 63 pixels: more than max_spatial_len, a random subset
    masks[1, 10:13, 10:13] = True  # 9 pixels: all of them, padded in the batch
    prompts = [decoder.encode_prompt(mask_features, levels, masks[i:i + 1], sampler=PointSampler(torch.Generator().manual_seed(1)))
               for i in range(2)]
    batch = VisualPrompt.concat(prompts)
    assert batch.padding[0].tolist()[1][:9] == [False] * 9 and all(batch.padding[0][1, 9:])
    frame_mask_features, frame_levels = frame_features(decoder, 1)
    together = decoder(frame_mask_features, frame_levels, batch)
    for i, prompt in enumerate(prompts):
        alone = decoder(frame_mask_features, frame_levels, prompt)
        torch.testing.assert_close(scores(together, batch)[i], scores(alone, prompt)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(together.mask_embeddings[i], alone.mask_embeddings[0], atol=1e-5, rtol=1e-5)
    selected = batch.select([1])
    torch.testing.assert_close(scores(decoder(frame_mask_features, frame_levels, selected), selected),
                               scores(together, batch)[1:], atol=1e-5, rtol=1e-5)


@torch.inference_mode()
def test_an_empty_mask_gives_a_zero_query_and_only_padding_tokens(decoder):
    mask_features, levels = frame_features(decoder, 0)
    prompt = decoder.encode_prompt(mask_features, levels, torch.zeros(1, 16, 16, dtype=torch.bool))
    assert torch.equal(prompt.query, torch.zeros(1, DIM))
    assert all(t.shape[1] == 0 for t in prompt.tokens)


def copied(prompt: VisualPrompt) -> VisualPrompt:
    """The same prompt as a new object (nothing memoised)."""
    return VisualPrompt(prompt.query.clone(), prompt.negative_query.clone(), [t.clone() for t in prompt.tokens],
                        [p.clone() for p in prompt.padding])


def test_a_prompt_reused_on_every_frame_projects_its_tokens_once(monkeypatch):
    decoder = random_decoder()  # its weights change below
    with torch.inference_mode():
        check_memo(decoder, monkeypatch)


def check_memo(decoder: SEEMDecoder, monkeypatch) -> None:
    calls = []
    project = SelfAttentionLayer.context_keys_values
    monkeypatch.setattr(SelfAttentionLayer, "context_keys_values",
                        lambda self, tokens: calls.append(tokens.shape) or project(self, tokens))
    masks = torch.zeros(1, 16, 16, dtype=torch.bool)
    masks[0, 2:9, 3:12] = True
    sampler = PointSampler(torch.Generator().manual_seed(1))
    prompt = decoder.encode_prompt(*frame_features(decoder, 0), masks, sampler=sampler)
    frames = [frame_features(decoder, seed) for seed in (1, 2)]
    reused = [decoder(*frame, prompt).mask_embeddings for frame in frames]
    assert len(calls) == decoder.cfg.num_layers  # the first frame's, once per layer
    for frame, embeddings in zip(frames, reused):
        assert torch.equal(embeddings, decoder(*frame, copied(prompt)).mask_embeddings)

    with torch.no_grad():  # weights loaded in place: the memo must not serve the old projections
        for layer in decoder.transformer_self_attention_layers:
            layer.self_attn.in_proj_weight.mul_(1.5)
    after = decoder(*frames[1], prompt).mask_embeddings
    assert torch.equal(after, decoder(*frames[1], copied(prompt)).mask_embeddings)
    assert not torch.equal(after, reused[1])

    with torch.autocast("cpu", dtype=torch.bfloat16):  # another dtype: its own projections
        assert torch.equal(decoder(*frames[1], prompt).mask_embeddings,
                           decoder(*frames[1], copied(prompt)).mask_embeddings)


def test_concatenating_one_prompt_keeps_it():
    """The propagation loop concatenates an object's prompts every frame: one prompt stays itself (and its memo)."""
    prompt = copied(VisualPrompt(torch.zeros(1, DIM), torch.zeros(1, DIM), [torch.zeros(1, 3, DIM)],
                                 [torch.zeros(1, 3, dtype=torch.bool)]))
    assert VisualPrompt.concat([prompt]) is prompt
