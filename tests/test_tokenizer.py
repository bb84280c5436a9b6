"""The offline CLIP tokenizer gives the ids of the HF ``CLIPTokenizer`` that SEEM uses.

Expected ids come from the golden data ("dog" = 1929, "black" = 1449, "swan" =
12530) and from running HF ``CLIPTokenizer`` (transformers 4.57.6, the version the
golden data was made with) with ``padding='max_length', truncation=True,
max_length=77`` on the same BPE vocabulary.
"""
from __future__ import annotations

import gzip

import pytest
import torch

from seem_core.tokenizer import CLIPTokenizer, default_tokenizer, tokenize

BOS, EOS = 49406, 49407


def content(text: str) -> list[int]:
    """The ids of one text up to and including its end token."""
    ids, mask = tokenize([text])
    return ids[0, :int(mask.sum())].tolist()


def test_dog_is_padded_with_the_end_token():
    ids, mask = tokenize(["dog"])
    assert ids.dtype == mask.dtype == torch.long
    assert ids.shape == mask.shape == (1, 77)
    assert ids[0].tolist() == [BOS, 1929] + [EOS] * 75
    assert mask[0].tolist() == [1, 1, 1] + [0] * 74


@pytest.mark.parametrize("text, expected", [
    ("a photo of a cat", [BOS, 320, 1125, 539, 320, 2368, EOS]),
    ("Hello, World! How ARE you?", [BOS, 3306, 267, 1002, 256, 829, 631, 592, 286, EOS]),
    ("it's we're I'll they've", [BOS, 585, 568, 649, 982, 328, 1342, 889, 1200, EOS]),
    ("wall-other-merged", [BOS, 2569, 268, 1010, 268, 46492, EOS]),
    ("unbelievably antidisestablishmentarianism", [BOS, 33781, 3120, 4262, 7726, 12658, 1585, 44351, EOS]),
    ("emoji 🐶🐱!!", [BOS, 16327, 14466, 35710, 748, EOS]),
    ("東京タワー", [BOS, 48338, 21078, 105, 34941, 2429, 107, 30391, EOS]),
    ("Straße", [BOS, 1894, 127, 253, 324, EOS]),
    ("café", [BOS, 15304, EOS]),
    ("<|endoftext|> inside", [BOS, EOS, 2912, EOS]),
    ("", [BOS, EOS]),
])
def test_ids_match_hf_clip_tokenizer(text, expected):
    assert content(text) == expected


def test_long_text_is_truncated_and_still_ends_with_the_end_token():
    ids, mask = tokenize(["dog " * 100])
    assert ids[0].tolist() == [BOS] + [1929] * 75 + [EOS]
    assert mask.sum() == 77
    # 75 words fill the context exactly; a 76th is dropped.
    fits, _ = tokenize(["a " * 75])
    dropped, _ = tokenize(["a " * 76])
    assert fits[0].tolist() == dropped[0].tolist() == [BOS] + [320] * 75 + [EOS]


def test_context_length_is_configurable():
    ids, mask = tokenize(["a black swan", "dog"], context_length=4)
    assert ids.tolist() == [[BOS, 320, 1449, EOS], [BOS, 1929, EOS, EOS]]
    assert mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    with pytest.raises(ValueError, match="context_length"):
        tokenize(["dog"], context_length=1)


@pytest.mark.parametrize("messy, clean", [
    ("  A  Black\n\tSWAN ", "a black swan"),  # whitespace collapsed, lower-cased
    ("cafÃ©", "café"),  # mojibake repaired by ftfy
    ("fish &amp; chips", "fish & chips"),  # HTML entity unescaped
])
def test_text_is_cleaned_like_clip(messy, clean):
    assert content(messy) == content(clean)


def test_vocabulary_file_errors_name_the_file(tmp_path):
    assert default_tokenizer().vocab_size == 49408
    missing = tmp_path / "missing.txt.gz"
    with pytest.raises(OSError, match="missing.txt.gz"):
        CLIPTokenizer(missing)
    short = tmp_path / "short.txt.gz"
    with gzip.open(short, "wt", encoding="utf-8") as fh:
        fh.write("#version: 0.2\ni n\n")
    with pytest.raises(ValueError, match="short.txt.gz"):
        CLIPTokenizer(short)
