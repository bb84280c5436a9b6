"""The SEEM decoder on the path of the official video demo (``seem_demo``).

Two calls make up that path:

* :meth:`SEEMDecoder.encode_prompt` (the official task ``refimg``): a
  reference frame's features and one mask per object become
  :class:`~seem_core.visual_sampler.VisualPrompt` s. No transformer layer runs.
* :meth:`SEEMDecoder.forward` (the official task ``demo`` with the visual
  branch on): 101 learned object queries run masked cross-attention to one
  feature level per layer (coarse to fine, cyclically), self-attention over
  themselves plus the prompt tokens of that level, and an FFN. Prediction heads
  run before the first layer and after each one. Every object query's mask
  embedding is finally scored against the prompt's visual query; the best one
  is the object's mask.

Differences from the official code are in the arithmetic's order only (the
golden tests hold us to 1e-4): each frame's keys and values are projected once
for all objects; the attention mask of the next layer is computed from mask
features resized to that level (bilinear resizing is linear, so this equals
resizing the full-resolution mask logits); prompt-token rows, whose outputs
SEEM throws away, are not computed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import MLP, CrossAttentionLayer, FFNLayer, SelfAttentionLayer
from .config import DecoderConfig
from .position_encoding import sine_position_encoding
from .visual_sampler import PointSampler, VisualPrompt, masked_mean, sample_features


@dataclass
class LevelFeatures:
    """One multi-scale level as the decoder reads it."""

    src_map: Tensor  # (Bf, C, h, w): projected features + level embedding
    src: Tensor  # (Bf, h*w, C)
    pos: Tensor  # (1, h*w, C): sine position code

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.src_map.shape[-2:])


@dataclass
class Prediction:
    """What the prediction heads give for the object queries at one step."""

    mask_embeddings: Tensor  # (B, Q, mask_dim)
    class_logits: Tensor | None  # (B, Q, num_classes) when asked for


@dataclass
class DecoderOutput:
    """Final prediction, every earlier step (``aux``), and the matching against the prompt."""

    mask_embeddings: Tensor
    class_logits: Tensor | None
    match_scores: Tensor  # (B, Q): mask embedding . visual query
    aux: list[Prediction] = field(default_factory=list)

    @property
    def best_query(self) -> Tensor:
        """(B,) index of the object query that matches each prompt best (argmax, no threshold)."""
        return self.match_scores.argmax(dim=1)


class SEEMDecoder(nn.Module):
    """Transformer decoder with the visual sampler; submodule names follow the official checkpoints."""

    def __init__(self, cfg: DecoderConfig, *, in_channels: int, mask_dim: int, dim_proj: int,
                 lang_encoder: nn.Module):
        super().__init__()
        if cfg.pre_norm:
            raise ValueError("MODEL.DECODER.PRE_NORM = true is not implemented (no SEEM config uses it)")
        dim = cfg.hidden_dim
        self.cfg = cfg
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(dim, cfg.nheads) for _ in range(cfg.num_layers))
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(dim, cfg.nheads) for _ in range(cfg.num_layers))
        self.transformer_ffn_layers = nn.ModuleList(
            FFNLayer(dim, cfg.dim_feedforward) for _ in range(cfg.num_layers))
        self.decoder_norm = nn.LayerNorm(dim)
        self.query_feat = nn.Embedding(cfg.num_queries, dim)
        self.query_embed = nn.Embedding(cfg.num_queries, dim)
        self.pn_indicator = nn.Embedding(2, dim)  # row 0: positive point, row 1: negative point
        self.level_embed = nn.Embedding(cfg.num_feature_levels, dim)
        self.input_proj = nn.ModuleList(
            nn.Conv2d(in_channels, dim, kernel_size=1)
            if in_channels != dim or cfg.enforce_input_proj else nn.Identity()
            for _ in range(cfg.num_feature_levels))
        self.lang_encoder = lang_encoder
        self.mask_embed = MLP(dim, dim, mask_dim, 3)
        self.class_embed = nn.Parameter(torch.empty(dim, dim_proj))
        self.mask_sptial_embed = nn.ParameterList(
            nn.Parameter(torch.empty(dim, dim)) for _ in range(cfg.num_feature_levels))
        # The spatial-memory embeddings belong to the interactive (v1) path; they are
        # kept so that released checkpoints load strictly, and unused here.
        self.spatial_embed = nn.Embedding(cfg.spatial_memories, dim)
        self.spatial_featured = nn.Embedding(cfg.spatial_memories, dim)
        nn.init.trunc_normal_(self.class_embed, std=0.02)
        for weight in self.mask_sptial_embed:
            nn.init.trunc_normal_(weight, std=0.02)

    # ------------------------------------------------------------------ inputs
    def level_features(self, multi_scale: list[Tensor]) -> list[LevelFeatures]:
        """Project the pixel decoder's coarse-to-fine maps and add level embeddings and positions."""
        levels = []
        for i, x in enumerate(multi_scale[: self.cfg.num_feature_levels]):
            src_map = self.input_proj[i](x) + self.level_embed.weight[i].view(1, -1, 1, 1)
            pos = sine_position_encoding(src_map.shape[-2:], self.cfg.hidden_dim // 2,
                                         device=x.device, dtype=src_map.dtype)
            levels.append(LevelFeatures(src_map, src_map.flatten(2).transpose(1, 2),
                                        pos.flatten(2).transpose(1, 2)))
        return levels

    # ------------------------------------------------------------ visual sampler
    def encode_prompt(self, mask_features: Tensor, levels: list[LevelFeatures], positive: Tensor,
                      negative: Tensor | None = None,
                      sampler: PointSampler | None = None) -> VisualPrompt:
        """Referring-image prompts from masks on the reference frame.

        ``positive`` / ``negative`` are (B, H, W) boolean masks at the padded input
        size, one per object; ``negative`` defaults to none. ``sampler`` draws the
        point subsets (default: from torch's global generator, as the official code).
        """
        if negative is None:
            negative = torch.zeros_like(positive)
        sampler = sampler or PointSampler()
        max_len = self.cfg.max_spatial_len

        def draw(masks: Tensor, limit: int) -> list[Tensor]:
            return [sampler(m, limit) for m in masks]

        pos_points, neg_points = draw(positive, max_len[-1]), draw(negative, max_len[-1])
        query = masked_mean(*sample_features(mask_features, pos_points))
        negative_query = masked_mean(*sample_features(mask_features, neg_points))

        tokens, padding = [], []
        for i, level in enumerate(levels):
            pos_points, neg_points = draw(positive, max_len[i]), draw(negative, max_len[i])
            points = [torch.cat([p, n]) for p, n in zip(pos_points, neg_points)]
            samples, pad = sample_features(level.src_map, points)
            level_tokens = samples @ self.mask_sptial_embed[i]
            is_negative = torch.zeros_like(pad)
            for b, (p, n) in enumerate(zip(pos_points, neg_points)):
                is_negative[b, p.shape[0]: p.shape[0] + n.shape[0]] = True
            indicator = torch.where(is_negative.unsqueeze(-1), self.pn_indicator.weight[1],
                                    self.pn_indicator.weight[0])
            tokens.append(torch.where(pad.unsqueeze(-1), 0.0, level_tokens + indicator))
            padding.append(pad)
        return VisualPrompt(query, negative_query, tokens, padding)

    # ------------------------------------------------------------------ decoding
    def forward(self, mask_features: Tensor, levels: list[LevelFeatures], prompt: VisualPrompt,
                class_logits: bool = False, keep_aux: bool = False) -> DecoderOutput:
        """Decode one frame against B prompts.

        ``mask_features`` and ``levels`` may have batch 1 (one frame shared by all
        objects) or B. ``class_logits`` asks for class scores (they need the
        language encoder's class table); ``keep_aux`` keeps every earlier step.
        """
        batch = len(prompt)
        num_queries = self.cfg.num_queries
        output = self.query_feat.weight.unsqueeze(0).expand(batch, -1, -1)
        query_pos = self.query_embed.weight.unsqueeze(0).expand(batch, -1, -1)
        resized_masks = {}  # mask features resized to each level, flattened: (Bf, C, h*w)
        for level in levels:
            if level.size not in resized_masks:
                resized = F.interpolate(mask_features, size=level.size, mode="bilinear", align_corners=False)
                resized_masks[level.size] = resized.flatten(2)

        steps = []
        prediction, blocked = self._heads(output, resized_masks[levels[0].size], class_logits)
        steps.append(prediction)
        for i in range(self.cfg.num_layers):
            level = levels[i % len(levels)]
            cross = self.transformer_cross_attention_layers[i]
            keys = cross.multihead_attn.project(level.src + level.pos, 1)
            values = cross.multihead_attn.project(level.src, 2)
            output = cross(output, query_pos, keys, values, blocked)

            tokens, token_padding = prompt.tokens[i % len(levels)], prompt.padding[i % len(levels)]
            self_blocked = None
            if token_padding.any():
                query_cols = token_padding.new_zeros(batch, num_queries)
                self_blocked = torch.cat([query_cols, token_padding], dim=1)[:, None, None, :]
            output = self.transformer_self_attention_layers[i](output, query_pos, tokens, tokens, self_blocked)
            output = self.transformer_ffn_layers[i](output)

            next_level = levels[(i + 1) % len(levels)]
            prediction, blocked = self._heads(output, resized_masks[next_level.size], class_logits)
            steps.append(prediction)

        final = steps[-1]
        scores = torch.einsum("bqc,bc->bq", final.mask_embeddings, prompt.query.to(final.mask_embeddings.dtype))
        return DecoderOutput(final.mask_embeddings, final.class_logits, scores,
                             aux=steps[:-1] if keep_aux else [])

    def _heads(self, output: Tensor, resized_mask_features: Tensor,
               class_logits: bool) -> tuple[Prediction, Tensor]:
        """Prediction heads, and the cross-attention mask (True = blocked) for the next layer."""
        decoded = self.decoder_norm(output)
        mask_embeddings = self.mask_embed(decoded)
        logits = None
        if class_logits:
            logits = self.lang_encoder.compute_similarity(decoded @ self.class_embed)
        mask_logits = torch.matmul(mask_embeddings, resized_mask_features)  # (B, Q, h*w)
        blocked = mask_logits.sigmoid() < 0.5
        # A query that would see nothing sees everything instead.
        blocked = blocked & ~blocked.all(dim=-1, keepdim=True)
        return Prediction(mask_embeddings, logits), blocked.unsqueeze(1)


def mask_logits(mask_features: Tensor, embeddings: Tensor) -> Tensor:
    """Mask logits at the mask-feature resolution: (B, K, C) . (1 or B, C, H, W) -> (B, K, H, W)."""
    if mask_features.shape[0] == 1:
        return torch.einsum("bkc,chw->bkhw", embeddings, mask_features[0])
    return torch.einsum("bkc,bchw->bkhw", embeddings, mask_features)
