"""SEEM's ``transformer_encoder_deform`` pixel decoder (Mask2Former's ``MSDeformAttnPixelDecoder``).

The coarse backbone maps (res3..res5 in SEEM) are projected to ``conv_dim``,
given a sine position code plus a learned per-level embedding, and refined
jointly by encoder layers of multi-scale deformable attention (Zhu et al.,
Deformable DETR): every token predicts, per head and per level, a few
sampling offsets around its own position and a softmax weight for each
sample; the output is the weighted sum of bilinearly sampled values. An FPN
then adds the finer maps (res2) down to ``common_stride`` and a 1x1 conv
gives the mask features. The decoder reads the first three maps (coarse to
fine).

Deformable attention is written in plain PyTorch with ``grid_sample``, the
arithmetic of the official fallback ``ms_deform_attn_core_pytorch`` (which
the golden data was recorded with): it runs on CPU and GPU without the
compiled CUDA op, whose results agree with it up to float rounding. Like the
official ``forward_features`` it runs in float32 with autocast off.

Module names equal the official ones (``input_proj.i``,
``transformer.level_embed``, ``transformer.encoder.layers.i.self_attn.*``,
``adapter_i``/``layer_i``, ``mask_features``), so checkpoints under
``sem_seg_head.pixel_decoder.`` load strictly. Inference only: dropout is
left out.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ConfigError, DeformPixelDecoderConfig
from .pixel_decoder import NUM_DECODER_LEVELS, ConvNormAct, feature_level, sorted_in_features
from .position_encoding import sine_position_encoding

# Hard-coded in the official from_config ("use 1024 for deformable transformer encoder");
# MODEL.DECODER.DIM_FEEDFORWARD does not reach the encoder.
ENCODER_FFN_DIM = 1024
# Sampling points per head and level (official default, no config key).
NUM_POINTS = 4


def deformable_sampling(value: Tensor, shapes: list[tuple[int, int]], locations: Tensor,
                        weights: Tensor) -> Tensor:
    """Weighted sum of bilinear samples, level by level: the official PyTorch fallback's arithmetic.

    value (N, S, heads, D) flattened levels; locations (N, Lq, heads, levels, points, 2) as
    (x, y) in [0, 1] of each level (0 and 1 are the outer pixel edges); weights
    (N, Lq, heads, levels, points). Samples outside a map read zeros. Returns (N, Lq, heads * D).
    """
    batch, _, heads, dim = value.shape
    _, queries, _, levels, points, _ = locations.shape
    grids = 2 * locations - 1  # grid_sample's [-1, 1] with align_corners=False
    samples = []
    for level, (value_l, (h, w)) in enumerate(zip(value.split([h * w for h, w in shapes], dim=1), shapes)):
        value_l = value_l.flatten(2).transpose(1, 2).reshape(batch * heads, dim, h, w)
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)  # (N*heads, Lq, points, 2)
        samples.append(F.grid_sample(value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False))
    sampled = torch.stack(samples, dim=-2).flatten(-2)  # (N*heads, D, Lq, levels*points)
    weights = weights.transpose(1, 2).reshape(batch * heads, 1, queries, levels * points)
    out = (sampled * weights).sum(-1).view(batch, heads * dim, queries)
    return out.transpose(1, 2)


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention: offsets and weights from the query, values from all levels."""

    def __init__(self, dim: int, levels: int, heads: int, points: int):
        super().__init__()
        if dim % heads:
            raise ConfigError(f"deformable attention: conv_dim {dim} is not a multiple of nheads {heads}")
        self.levels, self.heads, self.points = levels, heads, points
        self.sampling_offsets = nn.Linear(dim, heads * levels * points * 2)
        self.attention_weights = nn.Linear(dim, heads * levels * points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)

    def forward(self, query: Tensor, reference_points: Tensor, tokens: Tensor,
                shapes: list[tuple[int, int]]) -> Tensor:
        """query/tokens (N, L, C) (the same tokens, the query with positions added);
        reference_points (N, L, levels, 2) as (x, y) in [0, 1]."""
        batch, length, dim = tokens.shape
        value = self.value_proj(tokens).view(batch, length, self.heads, dim // self.heads)
        offsets = self.sampling_offsets(query).view(batch, length, self.heads, self.levels, self.points, 2)
        weights = self.attention_weights(query).view(batch, length, self.heads, self.levels * self.points)
        weights = weights.softmax(-1).view(batch, length, self.heads, self.levels, self.points)
        # An offset of 1 moves by one pixel of its level: normalise by (W, H).
        normalizer = torch.tensor([[w, h] for h, w in shapes], dtype=query.dtype, device=query.device)
        locations = reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        return self.output_proj(deformable_sampling(value, shapes, locations, weights))


class MSDeformAttnEncoderLayer(nn.Module):
    """Post-norm encoder layer: deformable self-attention, then a ReLU FFN."""

    def __init__(self, dim: int, levels: int, heads: int):
        super().__init__()
        self.self_attn = MSDeformAttn(dim, levels, heads, NUM_POINTS)
        self.norm1 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, ENCODER_FFN_DIM)
        self.linear2 = nn.Linear(ENCODER_FFN_DIM, dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: Tensor, pos: Tensor, reference_points: Tensor, shapes: list[tuple[int, int]]) -> Tensor:
        x = self.norm1(x + self.self_attn(x + pos, reference_points, x, shapes))
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


def reference_points(shapes: list[tuple[int, int]], levels: int, device: torch.device) -> Tensor:
    """(1, sum h*w, levels, 2): every token's pixel centre as (x, y) in [0, 1], the same on each level.

    Without padding (SEEM never pads these maps) the official valid ratios are 1.
    """
    points = []
    for h, w in shapes:
        ys = torch.linspace(0.5, h - 0.5, h, dtype=torch.float32, device=device) / h
        xs = torch.linspace(0.5, w - 0.5, w, dtype=torch.float32, device=device) / w
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((grid_x.reshape(-1), grid_y.reshape(-1)), -1))
    return torch.cat(points)[None, :, None].expand(-1, -1, levels, -1)


class MSDeformAttnEncoder(nn.Module):
    """The encoder layers, all reading the same position code and reference points."""

    def __init__(self, cfg: DeformPixelDecoderConfig, levels: int):
        super().__init__()
        self.layers = nn.ModuleList(MSDeformAttnEncoderLayer(cfg.conv_dim, levels, cfg.nheads)
                                    for _ in range(cfg.num_encoder_layers))

    def forward(self, tokens: Tensor, pos: Tensor, shapes: list[tuple[int, int]]) -> Tensor:
        points = reference_points(shapes, len(shapes), tokens.device)
        for layer in self.layers:
            tokens = layer(tokens, pos, points, shapes)
        return tokens


class MSDeformAttnTransformerEncoderOnly(nn.Module):
    """Flattens the projected levels, adds position + level embeddings, runs the encoder, unflattens."""

    def __init__(self, cfg: DeformPixelDecoderConfig, levels: int):
        super().__init__()
        self.encoder = MSDeformAttnEncoder(cfg, levels)
        self.level_embed = nn.Parameter(torch.zeros(levels, cfg.conv_dim))

    def forward(self, maps: list[Tensor]) -> list[Tensor]:
        """(B, C, h_i, w_i) maps, coarse first -> refined maps of the same shapes."""
        shapes = [tuple(x.shape[-2:]) for x in maps]
        channels = maps[0].shape[1]
        tokens = torch.cat([x.flatten(2).transpose(1, 2) for x in maps], 1)
        pos = torch.cat([
            sine_position_encoding(shape, channels // 2, device=x.device, dtype=x.dtype).flatten(2).transpose(1, 2)
            + self.level_embed[level].view(1, 1, -1)
            for level, (x, shape) in enumerate(zip(maps, shapes))], 1)
        tokens = self.encoder(tokens, pos, shapes)
        return [t.transpose(1, 2).reshape(len(t), channels, h, w)
                for t, (h, w) in zip(tokens.split([h * w for h, w in shapes], dim=1), shapes)]


class DeformablePixelDecoder(nn.Module):
    """Backbone maps ``{"res2": ..., "res5": ...}`` -> (mask features, three coarse-to-fine maps)."""

    def __init__(self, cfg: DeformPixelDecoderConfig, in_channels: dict[str, int]):
        super().__init__()
        self.in_features = sorted_in_features(cfg.in_features, in_channels)
        outside = [f for f in cfg.transformer_in_features if f not in cfg.in_features]
        if outside or not cfg.transformer_in_features:
            raise ConfigError(f"pixel decoder transformer_in_features {list(cfg.transformer_in_features)} must be "
                              f"a non-empty subset of in_features {list(cfg.in_features)}")
        if cfg.conv_dim % 2:
            raise ConfigError(f"pixel decoder conv_dim must be even for the sine position code, got {cfg.conv_dim}")
        self.transformer_in_features = sorted(cfg.transformer_in_features, key=feature_level)
        levels = len(self.transformer_in_features)
        # Coarsest first (input_proj.0 is res5), each a 1x1 conv + GroupNorm(32).
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels[name], cfg.conv_dim, kernel_size=1), nn.GroupNorm(32, cfg.conv_dim))
            for name in reversed(self.transformer_in_features))
        self.transformer = MSDeformAttnTransformerEncoderOnly(cfg, levels)
        self.mask_features = nn.Conv2d(cfg.conv_dim, cfg.mask_dim, kernel_size=1)
        # FPN levels from the finest encoder stride down to the common stride (res2 in SEEM).
        finest = feature_level(self.transformer_in_features[0])
        self.num_fpn_levels = finest - int(math.log2(cfg.common_stride))
        for i, name in enumerate(self.in_features[:self.num_fpn_levels], start=1):
            self.add_module(f"adapter_{i}", ConvNormAct(in_channels[name], cfg.conv_dim, 1, cfg.norm, relu=False))
            self.add_module(f"layer_{i}", ConvNormAct(cfg.conv_dim, cfg.conv_dim, 3, cfg.norm, relu=True))

    def forward(self, features: dict[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Return mask features (``common_stride``, ``mask_dim``) and up to three maps, coarsest first."""
        device_type = next(iter(features.values())).device.type
        with torch.autocast(device_type, enabled=False):  # deformable attention in float32, as officially
            maps = [proj(features[name].float())
                    for proj, name in zip(self.input_proj, reversed(self.transformer_in_features))]
            out = self.transformer(maps)
            for i in range(self.num_fpn_levels, 0, -1):
                lateral = getattr(self, f"adapter_{i}")(features[self.in_features[i - 1]].float())
                y = lateral + F.interpolate(out[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False)
                out.append(getattr(self, f"layer_{i}")(y))
            return self.mask_features(out[-1]), out[:NUM_DECODER_LEVELS]
