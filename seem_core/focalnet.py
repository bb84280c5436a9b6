"""FocalNet backbones of SEEM: ``focal`` (Focal-L) and ``focal_dw`` (Focal-T).

Focal modulation (Yang et al. 2022) replaces self-attention by a stack of
depthwise convolutions with growing kernels whose outputs are gated per pixel,
summed with a global average, and used to modulate a query projection.

Both SEEM variants share one implementation here. ``focal_dw`` (the official
``D2FocalNet`` of ``focal_dw.py``) adds a residual 3x3 depthwise conv before
each of the two sub-blocks and places its post-norm after the residual sum; the
plain ``focal`` variant normalises the branch output before adding it. Module
and parameter names follow the official code, so an official ``backbone.*``
state dict loads strictly.

Layout: tokens travel between blocks as contiguous (B, H, W, C) tensors, so
layer norms and linear layers run on them directly; convolutions see the same
memory as a channels-last (B, C, H, W) view, which avoids the permute copies
the official code makes around every convolution. On CPU inference the linear
layers and the conv+GELU pairs run as fused oneDNN ops. Inference only: dropout
and drop-path are identities in eval and have no parameters, so they are left out.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ConfigError, FocalNetConfig

# The official FocalNet grows the focal kernel by this step per level.
FOCAL_FACTOR = 2
# Initial layer-scale value of the official blocks (overwritten by checkpoints).
LAYERSCALE_INIT = 1e-4


def _as_conv_input(tokens: Tensor) -> Tensor:
    """View (B, H, W, C) tokens as a channels-last (B, C, H, W) tensor, no copy."""
    return tokens.permute(0, 3, 1, 2)


def _as_tokens(feature_map: Tensor) -> Tensor:
    """(B, C, H, W) -> contiguous (B, H, W, C); free when the map is channels-last."""
    return feature_map.permute(0, 2, 3, 1).contiguous()


# oneDNN runs a linear (or conv) layer with its bias and an optional exact GELU
# in one pass: the same numbers as the unfused ops (within float rounding), but
# without the bias copy of addmm, the second pass over memory and the second
# large allocation. These ops have no autograd, so they serve CPU float32
# inference only; everything else takes the plain PyTorch ops.
_ONEDNN_FUSED = torch.backends.mkldnn.is_available() and all(
    hasattr(torch.ops.mkldnn, op) for op in ("_linear_pointwise", "_convolution_pointwise")
)


def _use_fused(x: Tensor) -> bool:
    return _ONEDNN_FUSED and x.is_cpu and x.dtype == torch.float32 and not torch.is_grad_enabled()


def linear(x: Tensor, weight: Tensor, bias: Tensor | None, gelu: bool = False) -> Tensor:
    """``F.linear`` over the last dim, optionally followed by exact GELU."""
    if _use_fused(x):
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "gelu" if gelu else "none", [], "none")
    y = F.linear(x, weight, bias)
    return F.gelu(y) if gelu else y


def conv_gelu(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """gelu(conv(x))."""
    if _use_fused(x):
        return torch.ops.mkldnn._convolution_pointwise(
            x, conv.weight, conv.bias, conv.padding, conv.stride, conv.dilation, conv.groups, "gelu", [], "none"
        )
    return F.gelu(conv(x))


class Mlp(nn.Module):
    """Two-layer GELU feed-forward network applied to every token."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        hidden = linear(x, self.fc1.weight, self.fc1.bias, gelu=True)
        return linear(hidden, self.fc2.weight, self.fc2.bias)


class FocalModulation(nn.Module):
    """Gated multi-scale depthwise context that modulates a per-token query."""

    def __init__(
        self,
        dim: int,
        focal_level: int,
        focal_window: int,
        use_postln_in_modulation: bool = False,
        scaling_modulator: bool = False,
    ):
        super().__init__()
        self.dim = dim
        self.focal_level = focal_level
        self.scaling_modulator = scaling_modulator
        # One linear gives the query, the context and one gate per level plus the global one.
        self.f = nn.Linear(dim, 2 * dim + focal_level + 1)
        self.h = nn.Conv2d(dim, dim, kernel_size=1)
        self.act = nn.GELU()
        self.proj = nn.Linear(dim, dim)
        self.focal_layers = nn.ModuleList()
        for level in range(focal_level):
            kernel = FOCAL_FACTOR * level + focal_window
            self.focal_layers.append(
                nn.Sequential(
                    nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim, bias=False),
                    nn.GELU(),
                )
            )
        self.ln = nn.LayerNorm(dim) if use_postln_in_modulation else None

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        projected = linear(x, self.f.weight, self.f.bias)
        q, ctx, gates = projected.split((self.dim, self.dim, self.focal_level + 1), dim=-1)
        # The depthwise convs run fastest on a dense channels-last map: one copy here.
        ctx = _as_conv_input(ctx.contiguous())
        gates = _as_conv_input(gates)
        ctx_all = torch.zeros_like(ctx)
        for level, layer in enumerate(self.focal_layers):
            ctx = conv_gelu(ctx, layer[0])  # layer = Sequential(depthwise conv, GELU)
            ctx_all.addcmul_(ctx, gates[:, level : level + 1])
        ctx_global = self.act(ctx.mean((2, 3), keepdim=True))
        ctx_all.addcmul_(ctx_global, gates[:, self.focal_level :])
        if self.scaling_modulator:
            ctx_all = ctx_all.div_(self.focal_level + 1)
        # h is a 1x1 conv: on channels-last tokens it is a plain linear layer.
        modulator = linear(_as_tokens(ctx_all), self.h.weight.flatten(1), self.h.bias)
        x = q * modulator
        if self.ln is not None:
            x = self.ln(x)
        return linear(x, self.proj.weight, self.proj.bias)


class FocalModulationBlock(nn.Module):
    """Focal modulation then MLP, each a residual branch with norm and layer scale."""

    def __init__(self, dim: int, focal_level: int, focal_window: int, cfg: FocalNetConfig):
        super().__init__()
        self.depthwise = cfg.depthwise
        self.use_postln = cfg.use_postln
        self.dw1 = self._depthwise_conv(dim) if cfg.depthwise else None
        self.norm1 = nn.LayerNorm(dim)
        self.modulation = FocalModulation(
            dim,
            focal_level,
            focal_window,
            use_postln_in_modulation=cfg.use_postln_in_modulation,
            scaling_modulator=cfg.scaling_modulator,
        )
        self.dw2 = self._depthwise_conv(dim) if cfg.depthwise else None
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))
        if cfg.use_layerscale:
            self.gamma_1 = nn.Parameter(torch.full((dim,), LAYERSCALE_INIT))
            self.gamma_2 = nn.Parameter(torch.full((dim,), LAYERSCALE_INIT))
        else:
            self.gamma_1 = self.gamma_2 = None

    @staticmethod
    def _depthwise_conv(dim: int) -> nn.Conv2d:
        return nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim)

    @staticmethod
    def _add_local_context(x: Tensor, conv: nn.Conv2d | None) -> Tensor:
        """focal_dw only: x + depthwise3x3(x), a convolutional position cue."""
        if conv is None:
            return x
        return x + _as_tokens(conv(_as_conv_input(x)))

    def _residual(self, x: Tensor, branch: nn.Module, norm: nn.LayerNorm, gamma: Tensor | None) -> Tensor:
        """Pre-norm, or the variant's post-norm: around the sum (focal_dw) or on the branch (focal)."""
        if not self.use_postln:
            y = branch(norm(x))
        elif self.depthwise:
            y = branch(x)
        else:
            y = norm(branch(x))
        out = x + y if gamma is None else torch.addcmul(x, gamma, y)
        if self.use_postln and self.depthwise:
            out = norm(out)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        x = self._add_local_context(x, self.dw1)
        x = self._residual(x, self.modulation, self.norm1, self.gamma_1)
        x = self._add_local_context(x, self.dw2)
        return self._residual(x, self.mlp, self.norm2, self.gamma_2)


class PatchEmbed(nn.Module):
    """Strided conv + optional LayerNorm: the stem, and the 2x downsampling between stages.

    The input is first zero-padded at the bottom/right to a multiple of
    ``patch_size`` (as the official code does), so any input size works.
    """

    def __init__(
        self, in_chans: int, embed_dim: int, patch_size: int, kernel_size: int, stride: int, padding: int, norm: bool
    ):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size, stride=stride, padding=padding)
        self.norm = nn.LayerNorm(embed_dim) if norm else None

    @classmethod
    def stem(cls, cfg: FocalNetConfig) -> PatchEmbed:
        """Official stem: non-overlapping patches, or with ``use_conv_embed`` a 7x7 stride-4 conv
        padded by 3 (focal_dw) or 2 (focal)."""
        if cfg.use_conv_embed:
            geometry = dict(kernel_size=7, stride=4, padding=3 if cfg.depthwise else 2)
        else:
            geometry = dict(kernel_size=cfg.patch_size, stride=cfg.patch_size, padding=0)
        return cls(3, cfg.embed_dim, cfg.patch_size, norm=cfg.patch_norm, **geometry)

    @classmethod
    def downsample(cls, dim: int, cfg: FocalNetConfig) -> PatchEmbed:
        """Official 2x downsampling (3x3 stride-2 conv with ``use_conv_embed``); always normalised."""
        if cfg.use_conv_embed:
            geometry = dict(kernel_size=3, stride=2, padding=1)
        else:
            geometry = dict(kernel_size=2, stride=2, padding=0)
        return cls(dim, 2 * dim, 2, norm=True, **geometry)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, H', W', embed_dim) tokens."""
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.patch_size, -width % self.patch_size
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = _as_tokens(self.proj(x))
        return x if self.norm is None else self.norm(x)


class FocalStage(nn.Module):
    """The blocks of one resolution, then (except for the last stage) a 2x downsampling."""

    def __init__(
        self, dim: int, depth: int, focal_level: int, focal_window: int, downsample: bool, cfg: FocalNetConfig
    ):
        super().__init__()
        self.blocks = nn.ModuleList(
            FocalModulationBlock(dim, focal_level, focal_window, cfg) for _ in range(depth)
        )
        self.downsample = PatchEmbed.downsample(dim, cfg) if downsample else None

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x


def _validate(cfg: FocalNetConfig) -> None:
    stages = len(cfg.depths)
    problems = []
    if stages == 0:
        problems.append("depths is empty")
    for name in ("focal_levels", "focal_windows"):
        if len(getattr(cfg, name)) != stages:
            problems.append(f"{name} has {len(getattr(cfg, name))} entries for {stages} stages (depths)")
    if cfg.embed_dim <= 0 or cfg.patch_size <= 0 or cfg.mlp_ratio <= 0:
        problems.append("embed_dim, patch_size and mlp_ratio must be positive")
    if any(d < 0 for d in cfg.depths) or any(level < 0 for level in cfg.focal_levels):
        problems.append("depths and focal_levels must be >= 0")
    if any(w <= 0 for w in cfg.focal_windows):
        problems.append("focal_windows must be positive")
    if not cfg.out_indices:
        problems.append("out_indices is empty")
    bad = [i for i in cfg.out_indices if not 0 <= i < stages]
    if bad:
        problems.append(f"out_indices {bad} outside the {stages} stages")
    if problems:
        raise ConfigError("invalid FocalNet backbone config: " + "; ".join(problems))


class FocalNet(nn.Module):
    """FocalNet backbone returning normalised ``res2..res5`` maps (strides 4..32)."""

    def __init__(self, cfg: FocalNetConfig):
        super().__init__()
        _validate(cfg)
        self.out_indices = tuple(cfg.out_indices)
        self.patch_embed = PatchEmbed.stem(cfg)
        num_stages = len(cfg.depths)
        self.layers = nn.ModuleList(
            FocalStage(
                cfg.embed_dim * 2**i,
                cfg.depths[i],
                cfg.focal_levels[i],
                cfg.focal_windows[i],
                downsample=i < num_stages - 1,
                cfg=cfg,
            )
            for i in range(num_stages)
        )
        for i in self.out_indices:
            self.add_module(f"norm{i}", nn.LayerNorm(cfg.channels[i]))
        self.out_channels: dict[str, int] = {f"res{i + 2}": cfg.channels[i] for i in self.out_indices}

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Normalised, padded (B, 3, H, W) images -> {"res2": (B, C, H/4, W/4), ...}."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"FocalNet expects (B, 3, H, W) images, got shape {tuple(images.shape)}")
        # Channels-last input makes the stem conv emit token-ordered memory directly.
        x = self.patch_embed(images.contiguous(memory_format=torch.channels_last))
        outputs = {}
        for i, stage in enumerate(self.layers):
            x = stage(x)
            if i in self.out_indices:
                normed = getattr(self, f"norm{i}")(x)
                outputs[f"res{i + 2}"] = normed.permute(0, 3, 1, 2).contiguous()
            if stage.downsample is not None:
                x = stage.downsample(_as_conv_input(x))
        return outputs
