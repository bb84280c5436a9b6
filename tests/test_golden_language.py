"""The language encoder against the official SEEM implementation (golden ``text.*`` tensors),
the full-size key manifest, and the lazy, disk-cached class table."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from conftest import GOLDEN_DIR, compare_stage, require_path
from seem_core.checkpoint import load_checkpoint
from seem_core.class_names import DEFAULT_CLASS_NAMES, PROMPT_TEMPLATES
from seem_core.language import LanguageEncoder, SelfAttention
from seem_core.model import build_model

PREFIX = "sem_seg_head.predictor.lang_encoder."
# Language-encoder parameter count of every official config (golden README, section 4).
FULL_SIZE_PARAMS = 63_428_097
SMALL_VOCABULARY = ["dog", "black swan", "bicycle", "wall-other-merged"]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private, empty class-table cache for each test."""
    monkeypatch.setenv("SEEM_VOS_CACHE", str(tmp_path))
    return tmp_path / "class_embeddings"


def golden_encoder(variant) -> LanguageEncoder:
    encoder = LanguageEncoder(variant.config.text, variant.config.dim_proj).eval()
    encoder.load_state_dict(variant.state_dict_of(PREFIX), strict=True)
    return encoder


class ForwardCounter:
    """Counts text-transformer forward passes (a hook, so nothing about the model changes)."""

    def __init__(self, encoder: LanguageEncoder):
        self.calls = 0
        encoder.lang_encoder.register_forward_hook(self._count)

    def _count(self, *_) -> None:
        self.calls += 1


def test_text_stage_matches_official(golden_variant, cache_dir):
    encoder = golden_encoder(golden_variant)
    texts = golden_variant.meta["texts"]  # what the recorded run embedded (they differ between variants)
    with torch.no_grad():
        input_ids, attention_mask = encoder.tokenize(texts)
        tokens = encoder.token_embeddings(texts)
        produced = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "last_hidden_state": encoder.encode_tokens(input_ids, attention_mask)["last_hidden_state"],
            "forward_language_norm": encoder.embed_tokens(input_ids, attention_mask),
            "forward_language_nonorm": encoder.embed_tokens(input_ids, attention_mask, normalize=False),
            "token_emb": tokens["token_emb"],
            "class_emb": tokens["class_emb"],
            "eval_noprompt_embeddings": encoder.embed_texts(texts, templates=False),
            "eval_prompt_embeddings": encoder.embed_texts(texts, templates=True),
            "default_text_embeddings": encoder.class_embeddings(),
            "logit_scale": encoder.logit_scale,
        }
    compare_stage(golden_variant, "text.", produced)


def test_similarity_is_scaled_cosine_to_the_class_table(golden_variant, cache_dir):
    encoder = golden_encoder(golden_variant)
    encoder.set_class_names(SMALL_VOCABULARY)
    with torch.no_grad():
        table = encoder.class_embeddings()
        # Each class vector, at any length, is most similar to itself with cosine 1.
        logits = encoder.compute_similarity(3.0 * table.unsqueeze(0))
    num_classes = len(SMALL_VOCABULARY)
    assert logits.shape == (1, num_classes, num_classes)
    scale = math.exp(float(golden_variant.io["text.logit_scale"]))
    torch.testing.assert_close(logits[0].diagonal(), torch.full((num_classes,), scale), atol=1e-5, rtol=1e-5)
    assert torch.equal(logits[0].argmax(dim=1), torch.arange(num_classes))


def test_class_table_is_lazy_and_cached_on_disk(golden_variant, cache_dir):
    first = golden_encoder(golden_variant)
    counter = ForwardCounter(first)
    assert first.class_table is None and counter.calls == 0, "building/loading must not embed the classes"
    assert not cache_dir.exists()

    first.set_class_names(SMALL_VOCABULARY)  # the default table is checked in test_text_stage_matches_official
    with torch.inference_mode():  # as the decoder runs; the kept table must still be a normal tensor
        table = first.class_embeddings()
    assert counter.calls > 0
    assert not table.is_inference()
    assert table.shape == (len(SMALL_VOCABULARY), golden_variant.config.dim_proj)
    files = sorted(p.name for p in cache_dir.iterdir())
    assert files == [f"{first.class_table_key()}.pt"], f"expected one cache file, no temporaries: {files}"

    # A new process (here: a new module with the same weights) loads the table instead of computing it.
    second = golden_encoder(golden_variant)
    second.set_class_names(SMALL_VOCABULARY)
    counter = ForwardCounter(second)
    with torch.no_grad():
        assert torch.equal(second.class_embeddings(), table)
    assert counter.calls == 0


def test_building_and_loading_the_model_embeds_no_class(golden_variant, cache_dir, monkeypatch):
    def fail(*_, **__):
        raise AssertionError("the class table was computed while building or loading the model")

    monkeypatch.setattr(LanguageEncoder, "embed_texts", fail)
    model = build_model(golden_variant.path / "config.yaml")
    load_checkpoint(model, golden_variant.path / "state_dict.pt", strict=True)
    assert model.language.class_table is None
    assert not cache_dir.exists()


def test_vocabulary_and_weights_select_their_own_table(golden_variant, cache_dir):
    encoder = golden_encoder(golden_variant)
    default_key = encoder.class_table_key()
    with torch.no_grad():
        encoder.set_class_names(SMALL_VOCABULARY)
        small_key = encoder.class_table_key()
        encoder.class_embeddings()
        encoder.set_class_names(["swan", "door-stuff"])
        assert encoder.class_table is None
        custom = encoder.class_embeddings()
        torch.testing.assert_close(custom, encoder.embed_texts(["swan", "door"], templates=True))
    assert len({default_key, small_key, encoder.class_table_key()}) == 3
    assert len(list(cache_dir.iterdir())) == 2

    # New weights make the in-memory table stale and change the cache key.
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    state["lang_proj"] *= 2.0
    encoder.load_state_dict(state, strict=True)
    assert encoder.class_table is None
    encoder.set_class_names(DEFAULT_CLASS_NAMES)
    assert encoder.class_table_key() != default_key


def test_corrupt_cache_file_is_rebuilt(golden_variant, cache_dir):
    encoder = golden_encoder(golden_variant)
    encoder.set_class_names(["dog", "cat"])
    path = cache_dir / f"{encoder.class_table_key()}.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a torch file")
    with torch.no_grad():
        table = encoder.class_embeddings()
        torch.testing.assert_close(table, encoder.embed_texts(["dog", "cat"], templates=True))
    assert torch.equal(torch.load(path, weights_only=True)["embeddings"], table)


def test_templates_are_the_official_81():
    assert len(PROMPT_TEMPLATES) == 81 and all(t.count("{}") == 1 for t in PROMPT_TEMPLATES)
    assert PROMPT_TEMPLATES[:2] == ("{}.", "a photo of a {}.")
    assert len(DEFAULT_CLASS_NAMES) == 134 and DEFAULT_CLASS_NAMES[-1] == "background"
    golden = require_path(GOLDEN_DIR / "prompt_templates.json", "golden prompt templates")
    assert PROMPT_TEMPLATES == tuple(json.loads(golden.read_text())["templates"])
    golden = require_path(GOLDEN_DIR / "coco_panoptic_classes_plus_background.json", "golden class names")
    assert DEFAULT_CLASS_NAMES == tuple(json.loads(golden.read_text())["classes"])


@pytest.mark.parametrize("causal", [True, False])
def test_self_attention_matches_torch_multihead_attention(causal):
    """The official blocks use nn.MultiheadAttention (additive causal mask, or key padding when not causal)."""
    torch.manual_seed(0)
    batch, length, width, heads = 3, 9, 16, 4
    reference = nn.MultiheadAttention(width, heads).eval()
    ours = SelfAttention(width, heads)
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(batch, length, width)
    padding = torch.arange(length) >= torch.tensor([[9], [5], [2]])  # True = padded position
    if causal:
        causal_mask = torch.full((length, length), float("-inf")).triu(1)
        expected = reference(*[x.transpose(0, 1)] * 3, attn_mask=causal_mask, need_weights=False)[0]
        produced = ours(x)
    else:
        expected = reference(*[x.transpose(0, 1)] * 3, key_padding_mask=padding, need_weights=False)[0]
        produced = ours(x, padding)
    torch.testing.assert_close(produced, expected.transpose(0, 1), atol=1e-6, rtol=1e-5)
