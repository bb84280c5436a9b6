"""SEEM's language encoder: a causal CLIP text transformer, its projection, the class table, text prompts.

Parameter names follow the official checkpoints under
``sem_seg_head.predictor.lang_encoder.`` (``lang_encoder.*`` transformer,
``lang_proj``, ``logit_scale``). Tensors are batch-first ``(B, L, W)``.

A text prompt (:meth:`LanguageEncoder.text_prompt`) is what the official demo
gives the decoder for its ``Text`` task: every token from the start to the end
token projected by ``lang_proj`` (unnormalised) as grounding tokens, and the end
token's projection to score object queries against. One encoder pass per text.

The class table (one embedding per vocabulary name, averaged over 81 prompt
templates) only gives object queries a class score; mask propagation never
needs it. The official demo builds it at start-up (minutes on CPU). Here it is
built on first use and cached on disk under a hash of the weights, names and
templates, so later runs load it at once.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import MultiheadAttention
from .class_names import DEFAULT_CLASS_NAMES, PROMPT_TEMPLATES, prompt_name
from .config import TextEncoderConfig
from .tokenizer import tokenize as clip_tokenize
from .visual_sampler import pad_width

log = logging.getLogger(__name__)

CACHE_ENV = "SEEM_VOS_CACHE"
_CACHE_FORMAT = "seem-vos class table v1"
# Sentences per encoder batch when building the class table.
_TABLE_BATCH = 512


@dataclass
class TextPrompt:
    """Grounding tokens of B texts (official ``extra['grounding_*']``), reusable on every frame.

    ``tokens`` (B, T, C) are the projected, unnormalised token embeddings from
    the start to the end token; ``padding`` (B, T) is True after a shorter
    text's end; ``class_embedding`` (B, C) is the end token projected, which
    the text rule scores object queries against.
    """

    tokens: Tensor
    padding: Tensor
    class_embedding: Tensor

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def select(self, index: list[int] | Tensor) -> "TextPrompt":
        """The prompts of a subset of texts (padding columns kept)."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.tokens.device)
        return TextPrompt(self.tokens[index], self.padding[index], self.class_embedding[index])

    @staticmethod
    def concat(prompts: list["TextPrompt"]) -> "TextPrompt":
        """Stack prompts into one batch, padding the shorter texts."""
        width = max(p.tokens.shape[1] for p in prompts)
        return TextPrompt(torch.cat([pad_width(p.tokens, width, 0.0) for p in prompts]),
                          torch.cat([pad_width(p.padding, width, True) for p in prompts]),
                          torch.cat([p.class_embedding for p in prompts]))


class QuickGELU(nn.Module):
    """CLIP's sigmoid approximation of GELU (the text weights were trained with it)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


class SelfAttention(MultiheadAttention):
    """Self-attention with one fused q/k/v projection and fused SDPA (causal or key-padding mask)."""

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        """``key_padding_mask``: (B, L), True = padding; None means causal attention."""
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.unflatten(-1, (3, self.num_heads, -1)).permute(2, 0, 3, 1, 4)
        if key_padding_mask is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=~key_padding_mask[:, None, None, :])
        return self.out_proj(out.transpose(1, 2).flatten(2))


class ResidualAttentionBlock(nn.Module):
    """Pre-norm transformer block of the CLIP text encoder."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = SelfAttention(width, heads)
        # Official TF-style LayerNorm: eps 1e-12 inside the square root, as F.layer_norm computes it.
        self.ln_1 = nn.LayerNorm(width, eps=1e-12)
        self.mlp = nn.Sequential(OrderedDict(
            c_fc=nn.Linear(width, 4 * width), gelu=QuickGELU(), c_proj=nn.Linear(4 * width, width)))
        self.ln_2 = nn.LayerNorm(width, eps=1e-12)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.ln_1(x), key_padding_mask)
        return x + self.mlp(self.ln_2(x))


class TextTransformer(nn.Module):
    """Token + position embedding, residual blocks, final norm (official ``Transformer``)."""

    def __init__(self, cfg: TextEncoderConfig):
        super().__init__()
        self.autoregressive = cfg.autoregressive
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.width))
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(cfg.width, cfg.heads) for _ in range(cfg.layers))
        self.ln_final = nn.LayerNorm(cfg.width, eps=1e-12)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Hidden states (B, L, W) for ids (B, L), L <= context length.

        The causal encoder ignores ``attention_mask`` (as the official one does);
        a non-causal one masks padded keys with it.
        """
        length = input_ids.shape[1]
        if length > self.positional_embedding.shape[0]:
            raise ValueError(f"{length} tokens exceed the context length {self.positional_embedding.shape[0]}")
        key_padding_mask = None
        if not self.autoregressive:
            if attention_mask is None:
                raise ValueError("a non-causal text encoder needs the attention mask")
            key_padding_mask = attention_mask == 0
        x = self.token_embedding(input_ids) + self.positional_embedding[:length]
        for block in self.resblocks:
            x = block(x, key_padding_mask)
        return self.ln_final(x)


def eos_positions(input_ids: Tensor) -> Tensor:
    """Index of the first end token per row: CLIP's end id is the largest id, so ``argmax``."""
    return input_ids.argmax(dim=-1)


def l2_normalize(x: Tensor) -> Tensor:
    """SEEM's normalisation, with its 1e-7 added to the norm (text rule, class logits)."""
    return x / (x.norm(dim=-1, keepdim=True) + 1e-7)


class LanguageEncoder(nn.Module):
    """Text encoder + projection into the shared space, and the lazily built class table."""

    def __init__(self, cfg: TextEncoderConfig, dim_proj: int):
        super().__init__()
        self.context_length = cfg.context_length
        self.lang_encoder = TextTransformer(cfg)
        self.lang_proj = nn.Parameter(torch.empty(cfg.width, dim_proj))
        self.logit_scale = nn.Parameter(torch.ones([]))
        self.class_names: tuple[str, ...] = DEFAULT_CLASS_NAMES
        self.templates: tuple[str, ...] = PROMPT_TEMPLATES
        # Not in the state dict (like the official attribute); a buffer so .to() moves it.
        self.register_buffer("class_table", None, persistent=False)
        self.register_load_state_dict_post_hook(_forget_class_table)
        self._init_weights()

    def _init_weights(self) -> None:
        """Official init (trunc-normal std 0.02 cut at +-2, i.e. a plain normal; zero biases); norms keep ones."""
        for name, param in self.named_parameters():
            if param.dim() >= 2:
                nn.init.normal_(param, std=0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(param)

    # ------------------------------------------------------------ encoding
    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """``(input_ids, attention_mask)`` on this module's device."""
        ids, mask = clip_tokenize(list(texts), self.context_length)
        return ids.to(self.lang_proj.device), mask.to(self.lang_proj.device)

    def encode_tokens(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> dict[str, Tensor]:
        """``last_hidden_state`` (B, L, W) and ``pooled`` (B, W), the hidden state at the first end token."""
        hidden = self.lang_encoder(input_ids, attention_mask)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), eos_positions(input_ids)]
        return {"last_hidden_state": hidden, "pooled": pooled}

    def embed_tokens(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                     normalize: bool = True) -> Tensor:
        """Projected end-token embedding (B, dim_proj) (official ``forward_language``).

        A causal encoder's state at the end token ignores later positions, so the
        batch is cut after its last end token: the same numbers for far less work.
        """
        if self.lang_encoder.autoregressive:
            length = int(eos_positions(input_ids).max()) + 1
            input_ids = input_ids[:, :length]
            attention_mask = None if attention_mask is None else attention_mask[:, :length]
        x = self.encode_tokens(input_ids, attention_mask)["pooled"] @ self.lang_proj
        return l2_normalize(x) if normalize else x

    def token_embeddings(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Every token and the end token projected, unnormalised (official ``get_text_token_embeddings``)."""
        input_ids, attention_mask = self.tokenize(texts)
        out = self.encode_tokens(input_ids, attention_mask)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_emb": out["last_hidden_state"] @ self.lang_proj,
            "class_emb": out["pooled"] @ self.lang_proj,
        }

    def text_prompt(self, texts: Sequence[str]) -> TextPrompt:
        """Grounding tokens of each text, as the official demo builds them (``token_emb`` where the
        attention mask is 1, i.e. start to end token), and its end-token class embedding."""
        out = self.token_embeddings(texts)
        padding = out["attention_mask"] == 0
        length = int((~padding).sum(dim=1).max())
        tokens = out["token_emb"][:, :length].masked_fill(padding[:, :length, None], 0.0)
        return TextPrompt(tokens, padding[:, :length], out["class_emb"])

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str], *, templates: bool, normalize: bool = True) -> Tensor:
        """One unit vector per text (official ``get_text_embeddings(is_eval=True)``).

        With ``templates`` each text fills all prompt templates (stuff/merged
        suffixes dropped) and the template embeddings are averaged. ``normalize``
        normalises each sentence first (official ``norm``); the mean is always
        divided by its norm, without epsilon, as in SEEM.
        """
        texts = list(texts)
        if templates:
            sentences = [template.format(prompt_name(text)) for text in texts for template in self.templates]
        else:
            sentences = texts
        per_sentence = self._embed_sentences(sentences, normalize)
        mean = per_sentence.unflatten(0, (len(texts), -1)).mean(dim=1)
        return mean / mean.norm(dim=-1, keepdim=True)

    def _embed_sentences(self, sentences: list[str], normalize: bool) -> Tensor:
        """``embed_tokens`` over many sentences, batched by length so little padding is computed."""
        input_ids, attention_mask = self.tokenize(sentences)
        order = torch.argsort(eos_positions(input_ids))
        out = self.lang_proj.new_empty(len(sentences), self.lang_proj.shape[1])
        for batch in order.split(_TABLE_BATCH):
            out[batch] = self.embed_tokens(input_ids[batch], attention_mask[batch], normalize)
        return out

    # --------------------------------------------------------- class table
    def set_class_names(self, names: Sequence[str]) -> None:
        """Change the vocabulary of the class logits; its table is built on next use."""
        names = tuple(names)
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise ValueError("class names must be a non-empty list of non-empty strings")
        self.class_names = names
        self.reset_class_table()

    def reset_class_table(self) -> None:
        """Forget the table (new weights or names); it is rebuilt or reloaded on next use."""
        self.class_table = None

    def class_embeddings(self) -> Tensor:
        """The (num_classes, dim_proj) table: in memory, else from the disk cache, else computed."""
        if self.class_table is None:
            # Normal tensors even when first asked for under inference_mode, so later autograd use works.
            with torch.inference_mode(False):
                self.class_table = self._load_or_build_table()
        return self.class_table

    def compute_similarity(self, v: Tensor) -> Tensor:
        """Class logits (..., num_classes): ``exp(logit_scale)`` x cosine to the class table."""
        return self.logit_scale.exp() * l2_normalize(v) @ self.class_embeddings().t()

    def _load_or_build_table(self) -> Tensor:
        path = class_table_cache_dir() / f"{self.class_table_key()}.pt"
        device = self.lang_proj.device
        table = _read_cached_table(path, self.class_names, self.lang_proj.shape[1])
        if table is not None:
            return table.to(device=device, dtype=self.lang_proj.dtype)
        log.info("embedding %d class names x %d prompt templates (once; cached at %s)",
                 len(self.class_names), len(self.templates), path)
        table = self.embed_texts(self.class_names, templates=True)
        _write_atomically(path, {"format": _CACHE_FORMAT, "names": list(self.class_names),
                                 "templates": list(self.templates), "embeddings": table.cpu()})
        return table

    def class_table_key(self) -> str:
        """sha256 over the weights (names, dtypes, shapes, bytes), the class names and the templates."""
        digest = hashlib.sha256(_CACHE_FORMAT.encode())
        for name, tensor in sorted(self.state_dict().items()):
            tensor = tensor.detach().cpu().contiguous()
            digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
        for item in (*self.class_names, "\0", *self.templates):
            digest.update(item.encode("utf-8") + b"\0")
        return digest.hexdigest()


def class_table_cache_dir() -> Path:
    """``$SEEM_VOS_CACHE/class_embeddings``, default ``~/.cache/seem_vos/class_embeddings``."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "seem_vos"
    return Path(root).expanduser() / "class_embeddings"


def _read_cached_table(path: Path, names: tuple[str, ...], dim: int) -> Tensor | None:
    """The cached table, or None when absent or unusable (then it is rebuilt and rewritten)."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        table = payload["embeddings"]
        if payload["format"] != _CACHE_FORMAT or tuple(payload["names"]) != names:
            raise ValueError("written for other class names or by another version")
        if tuple(table.shape) != (len(names), dim):
            raise ValueError(f"shape {tuple(table.shape)} != {(len(names), dim)}")
    except Exception as err:  # a corrupt cache file must never stop inference
        log.warning("%s: ignoring the cached class table (%s); rebuilding it", path, err)
        return None
    return table


def _write_atomically(path: Path, payload: dict) -> None:
    """Write via a temporary file and rename, so a concurrent reader never sees half a file.

    (``eval.files.atomic_writer`` does this for the pipeline; ``seem_core`` must not depend
    on ``eval``, so this one cache file has its own.)"""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as fh:
            tmp = Path(fh.name)
            torch.save(payload, fh)
        os.replace(tmp, path)
    except OSError as err:
        log.warning("%s: cannot cache the class table (%s); it will be recomputed next run", path, err)
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _forget_class_table(module: LanguageEncoder, incompatible_keys) -> None:
    """Load-state-dict hook: a table built from the old weights is stale."""
    module.reset_class_table()
