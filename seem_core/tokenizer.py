"""Offline CLIP byte-pair tokenizer.

SEEM tokenizes with the Hugging Face ``CLIPTokenizer`` of
``openai/clip-vit-base-patch32``, which would need a hub download at start-up.
The same 49,408-token BPE ships with this package
(``assets/bpe_simple_vocab_16e6.txt.gz``, OpenAI CLIP, MIT), and this module
reproduces that tokenizer's ids exactly: ``ftfy`` repair, whitespace collapse and
lower-casing; ``<|startoftext|>`` ... ``<|endoftext|>``; truncation keeps the end
token last; padding with the end token (HF pads with ``<|endoftext|>``, not 0).
"""
from __future__ import annotations

import functools
import gzip
from pathlib import Path
from typing import Sequence

import ftfy
import regex
import torch
from torch import Tensor

DEFAULT_VOCAB = Path(__file__).parent / "assets" / "bpe_simple_vocab_16e6.txt.gz"
START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"
# Merges used by CLIP: the first 49152 - 256 - 2 lines after the header.
NUM_MERGES = 49152 - 256 - 2

# Special tokens, English contractions, letter runs, single digits, other non-space runs.
_WORD_PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)
_WHITESPACE = regex.compile(r"\s+")


@functools.lru_cache(maxsize=None)
def _byte_to_unicode() -> dict[int, str]:
    """Reversible map from bytes to printable characters, so BPE never sees whitespace or controls."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def clean_text(text: str) -> str:
    """The HF CLIPTokenizer normalisation: ftfy repair, collapse whitespace, strip, lower-case."""
    return _WHITESPACE.sub(" ", ftfy.fix_text(text)).strip().lower()


class CLIPTokenizer:
    """CLIP BPE tokenizer reading the gzipped merge list; ids equal the HF CLIP vocabulary."""

    def __init__(self, vocab_path: str | Path = DEFAULT_VOCAB):
        vocab_path = Path(vocab_path)
        try:
            with gzip.open(vocab_path, "rt", encoding="utf-8") as fh:
                lines = fh.read().split("\n")
        except (OSError, EOFError) as err:
            raise OSError(f"{vocab_path}: cannot read the CLIP BPE vocabulary ({err})") from None
        merges = [tuple(line.split()) for line in lines[1:NUM_MERGES + 1]]
        if len(merges) != NUM_MERGES or any(len(m) != 2 for m in merges):
            raise ValueError(f"{vocab_path}: expected {NUM_MERGES} BPE merges of two symbols each")
        symbols = list(_byte_to_unicode().values())
        vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [START_TOKEN, END_TOKEN]
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.merge_ranks = {merge: i for i, merge in enumerate(merges)}
        self.start_id = self.encoder[START_TOKEN]
        self.end_id = self.encoder[END_TOKEN]
        self._byte_encoder = _byte_to_unicode()
        self._bpe_cache: dict[str, list[str]] = {START_TOKEN: [START_TOKEN], END_TOKEN: [END_TOKEN]}

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def _bpe(self, word: str) -> list[str]:
        """Greedily apply the lowest-ranked merge until none applies; the last symbol carries ``</w>``."""
        cached = self._bpe_cache.get(word)
        if cached is not None:
            return cached
        parts = [*word[:-1], word[-1] + "</w>"]
        while len(parts) > 1:
            best = min(zip(parts, parts[1:]), key=lambda pair: self.merge_ranks.get(pair, NUM_MERGES))
            if best not in self.merge_ranks:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        self._bpe_cache[word] = parts
        return parts

    def encode(self, text: str) -> list[int]:
        """Token ids of one text, without start/end tokens."""
        ids = []
        for word in _WORD_PATTERN.findall(clean_text(text)):
            symbols = "".join(self._byte_encoder[b] for b in word.encode("utf-8"))
            # Every symbol is in the vocabulary (all bytes are); HF maps unknowns to the end token.
            ids.extend(self.encoder.get(s, self.end_id) for s in self._bpe(symbols))
        return ids

    def __call__(self, texts: str | Sequence[str], context_length: int = 77) -> tuple[Tensor, Tensor]:
        """``(input_ids, attention_mask)``, both int64 (B, context_length).

        Like HF ``padding='max_length', truncation=True``: a long text keeps its
        first ``context_length - 2`` tokens and still ends with the end token;
        padding repeats the end token and has attention 0.
        """
        if context_length < 2:
            raise ValueError(f"context_length must leave room for start and end tokens, got {context_length}")
        if isinstance(texts, str):
            texts = [texts]
        input_ids = torch.full((len(texts), context_length), self.end_id, dtype=torch.long)
        attention_mask = torch.zeros((len(texts), context_length), dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [self.start_id, *self.encode(text)[:context_length - 2], self.end_id]
            input_ids[row, :len(ids)] = torch.tensor(ids)
            attention_mask[row, :len(ids)] = 1
        return input_ids, attention_mask


@functools.lru_cache(maxsize=None)
def default_tokenizer() -> CLIPTokenizer:
    """The tokenizer on the packaged vocabulary, built once per process."""
    return CLIPTokenizer()


def tokenize(texts: str | Sequence[str], context_length: int = 77) -> tuple[Tensor, Tensor]:
    """Tokenize with the packaged CLIP vocabulary: ``(input_ids, attention_mask)`` (B, context_length)."""
    return default_tokenizer()(texts, context_length)
