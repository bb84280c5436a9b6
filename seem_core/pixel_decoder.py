"""SEEM's ``transformer_encoder_fpn`` pixel decoder.

A transformer encoder refines the coarsest backbone map; an FPN then walks
back to stride 4. The decoder reads the first three FPN outputs (coarse to
fine) and the mask features (a 3x3 conv of the finest FPN output).

Module names equal the official ones (``adapter_i`` lateral 1x1 convs,
``layer_i`` 3x3 output convs, ``i`` counted from the finest level;
``input_proj``, ``transformer.encoder.layers.*``, ``mask_features``) so
checkpoints under ``sem_seg_head.pixel_decoder.`` load strictly. Inference only:
the official dropout is the identity in eval mode and is left out.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import cpu_conv
from .attention import MultiheadAttention
from .config import ConfigError, PixelDecoderConfig
from .position_encoding import sine_position_encoding

# The SEEM decoder always reads three scales (``maskformer_num_feature_levels``).
NUM_DECODER_LEVELS = 3


class ConvNormAct(nn.Conv2d):
    """detectron2-style ``Conv2d``: convolution, then optional GroupNorm, then optional ReLU.

    The norm is a child named ``norm`` so that keys read ``layer_1.norm.weight``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, norm: str,
                 relu: bool):
        if norm not in ("GN", ""):
            raise ConfigError(f"pixel decoder norm {norm!r} is not implemented; supported: 'GN', ''")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                         bias=norm == "")
        self.norm = nn.GroupNorm(32, out_channels) if norm == "GN" else None
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        x = cpu_conv.conv2d(self, x)
        if self.norm is not None:
            x = self.norm(x)
        return F.relu_(x) if self.relu else x


class TransformerEncoderLayer(nn.Module):
    """One DETR encoder layer on (B, L, C) tokens; the position code is added to queries and keys."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, pre_norm: bool):
        super().__init__()
        self.self_attn = MultiheadAttention(dim, num_heads)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.pre_norm = pre_norm

    def _attention(self, x: Tensor, pos: Tensor) -> Tensor:
        attn = self.self_attn
        query_key = x + pos
        out = F.scaled_dot_product_attention(
            attn.project(query_key, 0), attn.project(query_key, 1), attn.project(x, 2))
        return attn.out_proj(out.transpose(1, 2).flatten(2))

    def _ffn(self, x: Tensor) -> Tensor:
        return self.linear2(F.relu(self.linear1(x)))

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        if self.pre_norm:
            x = x + self._attention(self.norm1(x), pos)
            return x + self._ffn(self.norm2(x))
        x = self.norm1(x + self._attention(x, pos))
        return self.norm2(x + self._ffn(x))


class TransformerEncoder(nn.Module):
    """A stack of encoder layers; a final LayerNorm exists only in the pre-norm variant (as officially)."""

    def __init__(self, cfg: PixelDecoderConfig):
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(cfg.conv_dim, cfg.nheads, cfg.dim_feedforward, cfg.pre_norm)
            for _ in range(cfg.num_encoder_layers))
        self.norm = nn.LayerNorm(cfg.conv_dim) if cfg.pre_norm else None

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, pos)
        return self.norm(x) if self.norm is not None else x


class TransformerEncoderOnly(nn.Module):
    """Runs the encoder on a (B, C, h, w) map and returns a map of the same shape."""

    def __init__(self, cfg: PixelDecoderConfig):
        super().__init__()
        self.encoder = TransformerEncoder(cfg)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        if c % 2:
            raise ValueError(f"pixel decoder conv_dim must be even for the sine position code, got {c}")
        pos = sine_position_encoding((h, w), c // 2, device=x.device, dtype=x.dtype)
        tokens = self.encoder(x.flatten(2).transpose(1, 2), pos.flatten(2).transpose(1, 2))
        return tokens.transpose(1, 2).reshape(b, c, h, w)


def add_upsampled_(x: Tensor, y: Tensor) -> Tensor:
    """``x += nearest-upsampled y``, in place. At exactly twice the size (the FPN's case) it is
    a broadcast add into a view of ``x``: the same sums without materialising the upsampled map."""
    (h, w), (hy, wy) = x.shape[-2:], y.shape[-2:]
    if (h, w) == (2 * hy, 2 * wy):
        x.unflatten(-1, (wy, 2)).unflatten(-3, (hy, 2)).add_(y[..., :, None, :, None])
        return x
    return x.add_(F.interpolate(y, size=(h, w), mode="nearest"))


def feature_level(name: str) -> int:
    """N of a backbone map ``res<N>`` (its stride is 2**N)."""
    match = re.fullmatch(r"res(\d+)", name)
    if match is None:
        raise ConfigError(f"pixel decoder in_features must be named res<N>, got {name!r}")
    return int(match.group(1))


def sorted_in_features(in_features: tuple[str, ...], in_channels: dict[str, int]) -> list[str]:
    """The backbone maps a pixel decoder reads, fine to coarse (the official sort by stride)."""
    missing = [f for f in in_features if f not in in_channels]
    if missing:
        raise ConfigError(f"pixel decoder in_features {missing} are not backbone outputs {sorted(in_channels)}")
    return sorted(in_features, key=feature_level)


class TransformerEncoderPixelDecoder(nn.Module):
    """Backbone maps ``{"res2": ..., "res5": ...}`` -> (mask features, three coarse-to-fine maps)."""

    def __init__(self, cfg: PixelDecoderConfig, in_channels: dict[str, int]):
        super().__init__()
        # Module indices count from the finest.
        self.in_features = sorted_in_features(cfg.in_features, in_channels)
        conv_dim = cfg.conv_dim
        for i, name in enumerate(self.in_features[:-1], start=1):
            self.add_module(f"adapter_{i}", ConvNormAct(in_channels[name], conv_dim, 1, cfg.norm, relu=False))
            self.add_module(f"layer_{i}", ConvNormAct(conv_dim, conv_dim, 3, cfg.norm, relu=True))
        self.mask_features = nn.Conv2d(conv_dim, cfg.mask_dim, kernel_size=3, padding=1)
        self.input_proj = nn.Conv2d(in_channels[self.in_features[-1]], conv_dim, kernel_size=1)
        self.transformer = TransformerEncoderOnly(cfg)
        self.add_module(f"layer_{len(self.in_features)}",
                        ConvNormAct(conv_dim, conv_dim, 3, cfg.norm, relu=True))

    def forward(self, features: dict[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Return mask features (stride 4, ``mask_dim``) and up to three maps, coarsest first.

        oneDNN's direct convolutions run ~5% faster channels-last, NNPACK's Winograd reads
        (B, C, H, W): the maps take the layout of whichever computes the large 3x3 convs
        (:mod:`.cpu_conv`), so read the outputs with ``reshape``/``flatten``, not ``view``.
        """
        num_levels = len(self.in_features)
        finest = features[self.in_features[0]]  # the size of the stride-4 map that layer_1 convolves
        layout = torch.contiguous_format if cpu_conv.winograd_applies(self.layer_1, finest) else torch.channels_last
        features = {name: features[name].contiguous(memory_format=layout) for name in self.in_features}
        coarsest = self.in_features[-1]
        encoded = self.transformer(cpu_conv.conv2d(self.input_proj, features[coarsest]))
        y = getattr(self, f"layer_{num_levels}")(encoded)
        multi_scale = [y]
        for i in range(num_levels - 1, 0, -1):
            lateral = getattr(self, f"adapter_{i}")(features[self.in_features[i - 1]])
            y = add_upsampled_(lateral, y)
            y = getattr(self, f"layer_{i}")(y)
            if len(multi_scale) < NUM_DECODER_LEVELS:
                multi_scale.append(y)
        return cpu_conv.conv2d(self.mask_features, y), multi_scale
