"""The SEEM transformer decoder: the demo forward (every prompt kind) and the v1 interactive forward.

Three calls, each one official decoder task:

* :meth:`SEEMDecoder.encode_prompt` (task ``refimg``): a frame's features and
  one positive (and optionally negative) mask per object become
  :class:`~seem_core.visual_sampler.VisualPrompt` s. No transformer layer runs.
  It serves referring images (a mask on an earlier frame) and strokes or clicks
  on the frame being segmented alike; the point sampler decides whose draws
  (demo or v1) are replayed.
* :meth:`SEEMDecoder.forward` (``seem_demo``, task ``demo``): 101 learned
  object queries run masked cross-attention to one feature level per layer
  (coarse to fine, cyclically), self-attention over themselves plus the prompt
  tokens, and an FFN. Prompt tokens are grounding tokens (a text: set once and
  carried through every layer with their initial value as position
  embedding), spatial tokens (a stroke on this frame) and visual tokens (a
  referring image); spatial and visual tokens of the layer's level enter every
  layer fresh. Prediction heads run before the first layer and after each one.
* :meth:`SEEMDecoder.forward_interactive` (``seem_v1``, task ``spatial``, as
  ``evaluate_interactive_single`` calls it): ``spatial_queries`` (3) object
  queries, picked by ``randint``, are copied as spatial queries; they
  cross-attend like object queries but in self-attention see only each other
  and the spatial tokens, while object queries see only object queries. The
  spatial query whose mask embedding best matches the prompt's mean positive
  query gives the mask.

Who may attend to whom is a table per architecture (:data:`DEMO_ATTENTION`,
:data:`V1_ATTENTION`, the official ``ATTENTION_ARCH.SELF_ATTENTION``); padding
tokens are never attended to and attend to nothing.

Differences from the official code are in the arithmetic's order only (the
golden tests hold us to 1e-4): each frame's keys and values are projected once
for all objects; the attention mask of the next layer is computed from mask
features resized to that level (bilinear resizing is linear, so this equals
resizing the full-resolution mask logits); rows whose outputs SEEM throws away
(prompt tokens that enter every layer fresh) are not computed, and those tokens'
keys and values, which depend on the prompt alone, are projected once per prompt
instead of once per frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import MLP, CrossAttentionLayer, FFNLayer, SelfAttentionLayer
from .config import DecoderConfig
from .language import TextPrompt
from .position_encoding import sine_position_encoding
from .visual_sampler import PointSampler, VisualPrompt, masked_mean, sample_features

# Self-attention: which token groups each group may attend to (official ATTENTION_ARCH.SELF_ATTENTION).
DEMO_ATTENTION: Mapping[str, tuple[str, ...]] = {
    "object": ("object", "grounding", "spatial", "visual"),
    "grounding": ("object", "grounding"),
    "spatial": ("spatial",),
    "visual": ("visual",),
}
V1_ATTENTION: Mapping[str, tuple[str, ...]] = {
    "object": ("object",),
    "spatial_query": ("spatial_query", "spatial"),
    "spatial": ("spatial",),
}


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
    """What the prediction heads give for the cross-attending queries at one step."""

    mask_embeddings: Tensor  # (B, Q, mask_dim)
    class_logits: Tensor | None = None  # (B, Q, num_classes) when asked for
    captions: Tensor | None = None  # (B, Q, dim_proj): class embeddings before the class table

    def rows(self, start: int, stop: int | None = None) -> "Prediction":
        """The predictions of queries ``start:stop``."""
        def cut(x: Tensor | None) -> Tensor | None:
            return None if x is None else x[:, start:stop]
        return Prediction(cut(self.mask_embeddings), cut(self.class_logits), cut(self.captions))


@dataclass
class DecoderOutput:
    """Every prediction step (before the first layer, after each; only the last unless kept) and,
    when kept, the carried tokens (grounding) after each layer."""

    steps: list[Prediction]
    carried: list[Tensor] = field(default_factory=list)

    @property
    def final(self) -> Prediction:
        return self.steps[-1]

    @property
    def aux(self) -> list[Prediction]:
        return self.steps[:-1]

    @property
    def mask_embeddings(self) -> Tensor:
        return self.final.mask_embeddings

    @property
    def class_logits(self) -> Tensor | None:
        return self.final.class_logits

    @property
    def captions(self) -> Tensor | None:
        return self.final.captions

    def rows(self, start: int, stop: int | None = None) -> "DecoderOutput":
        return DecoderOutput([step.rows(start, stop) for step in self.steps], self.carried)


@dataclass
class InteractiveOutput:
    """The v1 interactive call: object and spatial queries' predictions and the spatial query chosen."""

    objects: DecoderOutput  # the object queries (nothing of the prompt reaches them)
    spatial: DecoderOutput  # the spatial queries
    source_queries: Tensor  # (k,) the object queries the spatial queries were copied from
    scores: Tensor  # (B, k): spatial mask embedding . the prompt's mean positive query

    @property
    def best(self) -> Tensor:
        """(B,) the spatial query each object's mask comes from (argmax, no threshold)."""
        return self.scores.argmax(dim=1)

    @property
    def chosen_embeddings(self) -> Tensor:
        """(B, mask_dim) the chosen spatial queries' mask embeddings."""
        rows = torch.arange(self.scores.shape[0], device=self.scores.device)
        return self.spatial.mask_embeddings[rows, self.best]


def self_attention_mask(groups: Sequence[tuple[str, Tensor]], attends: Mapping[str, Sequence[str]],
                        rows: int | None = None) -> Tensor:
    """Who may not attend to whom in self-attention: (B, rows, L) bool, True = blocked.

    ``groups`` are the sequence's token groups in order, each a name and its
    padding (B, n) (True = padding). A position may attend to another when its
    group may attend to the other's group and neither is padding. ``rows``
    limits the result to the first rows (the ones the decoder computes).
    """
    names = [name for name, _ in groups]
    sizes = [padding.shape[1] for _, padding in groups]
    padding = torch.cat([p for _, p in groups], dim=1)
    allowed = torch.tensor([[b in attends[a] for b in names] for a in names], device=padding.device)
    allowed = allowed.repeat_interleave(torch.tensor(sizes, device=padding.device), dim=0)
    allowed = allowed.repeat_interleave(torch.tensor(sizes, device=padding.device), dim=1)
    rows = padding.shape[1] if rows is None else rows
    return ~allowed[None, :rows] | padding[:, :rows, None] | padding[:, None, :]


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
        # The spatial memories feed the official iterative interactive evaluation (a previous
        # mask as memory), which is not implemented; they are kept so checkpoints load strictly.
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
        """Prompts from masks on one frame: referring images, strokes and clicks alike.

        ``positive`` / ``negative`` are (B, H, W) boolean masks at the padded input
        size, one per object; ``negative`` defaults to none. ``sampler`` draws the
        point subsets (default: the demo's, from torch's global generator, as the
        official code) and says what a mask without points gives.
        """
        if negative is None:
            negative = torch.zeros_like(positive)
        sampler = sampler or PointSampler()
        max_len = self.cfg.max_spatial_len

        def draw(masks: Tensor, limit: int) -> list[Tensor]:
            return [sampler(m, limit) for m in masks]

        pos_points, neg_points = draw(positive, max_len[-1]), draw(negative, max_len[-1])
        query = masked_mean(*sample_features(mask_features, pos_points), sampler.empty_value)
        negative_query = masked_mean(*sample_features(mask_features, neg_points), sampler.empty_value)

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
    def forward(self, mask_features: Tensor, levels: list[LevelFeatures], visual: VisualPrompt | None = None,
                *, spatial: VisualPrompt | None = None, text: TextPrompt | None = None,
                class_logits: bool = False, keep_aux: bool = False) -> DecoderOutput:
        """The demo decoder on one frame against B objects' prompts (any non-empty combination).

        ``visual``: referring-image prompts; ``spatial``: prompts encoded from
        strokes/clicks on this frame; ``text``: grounding tokens. All have batch
        B; ``mask_features`` and ``levels`` batch 1 (one frame shared by all
        objects) or B. ``class_logits`` asks for class scores (they need the
        language encoder's class table); ``keep_aux`` keeps every step. Class
        embeddings (``captions``) come with text prompts or class logits.
        """
        present = [p for p in (visual, spatial, text) if p is not None]
        if not present:
            raise ValueError("the decoder needs a visual, spatial or text prompt")
        batch = len(present[0])
        if any(len(p) != batch for p in present):
            raise ValueError(f"prompt batches differ: {[len(p) for p in present]}")
        num_queries = self.cfg.num_queries
        rows = self.query_feat.weight.unsqueeze(0).expand(batch, -1, -1)
        rows_pos = self.query_embed.weight.unsqueeze(0).expand(batch, -1, -1)
        groups = [("object", rows.new_zeros(batch, num_queries, dtype=torch.bool))]
        if text is not None:
            tokens = text.tokens.to(rows.dtype)
            rows, rows_pos = torch.cat([rows, tokens], dim=1), torch.cat([rows_pos, tokens], dim=1)
            groups.append(("grounding", text.padding))
        context = [(name, p) for name, p in (("spatial", spatial), ("visual", visual)) if p is not None]
        return self._decode(mask_features, levels, rows, rows_pos, num_queries, groups, context, DEMO_ATTENTION,
                            captions=text is not None or class_logits, class_logits=class_logits,
                            keep=keep_aux)

    def forward_interactive(self, mask_features: Tensor, levels: list[LevelFeatures], spatial: VisualPrompt,
                            generator: torch.Generator | None = None, class_logits: bool = False,
                            keep_aux: bool = False) -> InteractiveOutput:
        """The v1 decoder's interactive call on one frame for B objects' spatial prompts.

        ``spatial`` comes from :meth:`encode_prompt` with the v1 sampler on this
        frame. ``generator`` draws which object queries become spatial queries
        (one ``randint`` for the whole batch, after the point draws, as the
        official call). Class logits and class embeddings only on request.
        """
        batch, num_queries, count = len(spatial), self.cfg.num_queries, self.cfg.spatial_queries
        source = torch.randint(0, num_queries, (count,), generator=generator).to(spatial.query.device)
        feat, embed = self.query_feat.weight, self.query_embed.weight
        rows = torch.cat([feat, feat[source]]).unsqueeze(0).expand(batch, -1, -1)
        rows_pos = torch.cat([embed, embed[source]]).unsqueeze(0).expand(batch, -1, -1)
        groups = [("object", rows.new_zeros(batch, num_queries, dtype=torch.bool)),
                  ("spatial_query", rows.new_zeros(batch, count, dtype=torch.bool))]
        output = self._decode(mask_features, levels, rows, rows_pos, num_queries + count, groups,
                              [("spatial", spatial)], V1_ATTENTION, captions=class_logits,
                              class_logits=class_logits, keep=keep_aux)
        queries = output.rows(num_queries)
        scores = torch.einsum("bkc,bc->bk", queries.mask_embeddings, spatial.query.to(queries.mask_embeddings.dtype))
        return InteractiveOutput(output.rows(0, num_queries), queries, source, scores)

    def _decode(self, mask_features: Tensor, levels: list[LevelFeatures], rows: Tensor, rows_pos: Tensor,
                num_cross: int, groups: list[tuple[str, Tensor]], context: list[tuple[str, VisualPrompt]],
                attends: Mapping[str, Sequence[str]], *, captions: bool, class_logits: bool,
                keep: bool) -> DecoderOutput:
        """The layer loop shared by both decoders.

        ``rows`` (B, R, C) are carried through every layer; the first
        ``num_cross`` cross-attend and get prediction heads, the rest (grounding
        tokens) only take part in self-attention and the FFN. ``context`` holds
        the prompts whose tokens of the layer's level join self-attention fresh
        in every layer; ``groups`` name the rows' token groups for ``attends``.
        """
        num_rows = rows.shape[1]
        resized_masks = {}  # mask features resized to each level, flattened: (Bf, C, h*w)
        for level in levels:
            if level.size not in resized_masks:
                resized_masks[level.size] = downsample_bilinear(mask_features, level.size).flatten(2)
        self_blocked = []  # per level: the self-attention mask (None: nothing blocked)
        for i in range(len(levels)):
            level_groups = groups + [(name, p.padding[i]) for name, p in context]
            blocked = self_attention_mask(level_groups, attends, rows=num_rows)
            self_blocked.append(blocked[:, None] if blocked.any() else None)

        steps, carried = [], []
        prediction, blocked = self._heads(rows[:, :num_cross], resized_masks[levels[0].size], captions, class_logits)
        steps.append(prediction)
        for i in range(self.cfg.num_layers):
            level = levels[i % len(levels)]
            cross = self.transformer_cross_attention_layers[i]
            keys = cross.multihead_attn.project(level.src + level.pos, 1)
            values = cross.multihead_attn.project(level.src, 2)
            crossed = cross(rows[:, :num_cross], rows_pos[:, :num_cross], keys, values, blocked)
            rows = crossed if num_cross == num_rows else torch.cat([crossed, rows[:, num_cross:]], dim=1)

            context_keys, context_values = self._context_keys_values(i, i % len(levels), context, rows)
            rows = self.transformer_self_attention_layers[i](rows, rows_pos, context_keys, context_values,
                                                             self_blocked[i % len(levels)])
            rows = self.transformer_ffn_layers[i](rows)

            next_level = levels[(i + 1) % len(levels)]
            prediction, blocked = self._heads(rows[:, :num_cross], resized_masks[next_level.size], captions,
                                              class_logits)
            if keep:
                steps.append(prediction)
                carried.append(rows[:, num_cross:])
            else:
                steps[-1:] = [prediction]
        return DecoderOutput(steps, carried)

    def _context_keys_values(self, layer: int, level: int, context: list[tuple[str, VisualPrompt]],
                             rows: Tensor) -> tuple[Tensor, Tensor]:
        """Self-attention ``layer``'s keys and values of the context prompts' tokens, (B, heads, T, d).

        They depend on the prompt alone, so each prompt keeps them (:meth:`VisualPrompt.memo`)
        and a prompt reused on every frame of a video is projected once, not once per frame.
        The key names everything else they depend on: the layer's weights (and their version,
        so loading new weights recomputes; weights made in inference mode have none), dtype,
        autocast and inference mode.
        """
        attention = self.transformer_self_attention_layers[layer]
        weight = attention.self_attn.in_proj_weight
        device = rows.device.type
        key = ("self_attention", layer, id(attention), None if weight.is_inference() else weight._version, rows.dtype,
               torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None,
               torch.is_inference_mode_enabled())
        pairs = [prompt.memo(key, lambda p=prompt: attention.context_keys_values(p.tokens[level].to(rows.dtype)))
                 for _, prompt in context]
        if not pairs:
            return attention.context_keys_values(rows.new_zeros(rows.shape[0], 0, rows.shape[-1]))
        if len(pairs) == 1:
            return pairs[0]
        return torch.cat([k for k, _ in pairs], dim=2), torch.cat([v for _, v in pairs], dim=2)

    def _heads(self, output: Tensor, resized_mask_features: Tensor, captions: bool,
               class_logits: bool) -> tuple[Prediction, Tensor]:
        """Prediction heads, and the cross-attention mask (True = blocked) for the next layer."""
        decoded = self.decoder_norm(output)
        mask_embeddings = self.mask_embed(decoded)
        class_embeddings = logits = None
        if captions or class_logits:
            class_embeddings = decoded @ self.class_embed
        if class_logits:
            logits = self.lang_encoder.compute_similarity(class_embeddings)
        if resized_mask_features.shape[0] == 1:  # one frame for every object: one (B*Q, C) @ (C, h*w) product
            flat = mask_embeddings.flatten(0, 1) @ resized_mask_features[0]
            mask_logits = flat.unflatten(0, mask_embeddings.shape[:2])
        else:
            mask_logits = torch.matmul(mask_embeddings, resized_mask_features)  # (B, Q, h*w)
        blocked = mask_logits.sigmoid() < 0.5
        # A query that would see nothing sees everything instead.
        blocked = blocked & ~blocked.all(dim=-1, keepdim=True)
        return Prediction(mask_embeddings, logits, class_embeddings), blocked.unsqueeze(1)


def downsample_bilinear(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``F.interpolate(x, size, mode="bilinear", align_corners=False)`` to a smaller size.

    By an exact even factor s >= 4 each output is the mean of the two middle rows and columns
    of its s x s block, taken here from strided views: on (B, C, H, W) CPU maps that is ~7x
    faster than interpolate, whose result it matches to float32 rounding.
    """
    (h, w), (oh, ow) = x.shape[-2:], size
    sh, sw = divmod(h, oh), divmod(w, ow)
    if sh[1] or sw[1] or sh[0] % 2 or sw[0] % 2 or min(sh[0], sw[0]) < 4 or not x.is_contiguous():
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    sh, sw = sh[0], sw[0]
    a, b = sh // 2 - 1, sw // 2 - 1
    rows = x[..., a::sh, :] * 0.5 + x[..., a + 1::sh, :] * 0.5
    return rows[..., b::sw] * 0.5 + rows[..., b + 1::sw] * 0.5


def mask_logits(mask_features: Tensor, embeddings: Tensor) -> Tensor:
    """Mask logits at the mask-feature resolution: (B, K, C) . (1 or B, C, H, W) -> (B, K, H, W)."""
    if mask_features.shape[0] == 1:
        return torch.einsum("bkc,chw->bkhw", embeddings, mask_features[0])
    return torch.einsum("bkc,bchw->bkhw", embeddings, mask_features)
