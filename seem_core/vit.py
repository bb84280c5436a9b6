"""SAM's ViT image encoder with SEEM's SimpleFPN neck (the official ``vit`` backbone, ``D2ViT``).

SEEM's SAM-ViT models take the image encoder of Segment Anything (Kirillov et
al. 2023): 16x16 patches, an absolute position embedding for exactly
``image_size / 16`` patches per side, and transformer blocks that attend
either inside 14x14 windows or over the whole token grid (the
``global_attn_indexes``), each adding decomposed relative-position terms to
its attention logits. SAM's own 256-channel neck is replaced by a
``SimpleFPN`` that turns the single stride-16 map into res2..res5 (strides
4..32) with transposed and strided convolutions.

The position embedding is added as it is, never resized (as officially), so
the input must be a padded square of exactly ``image_size``; the model's
preprocessing guarantees that (see :mod:`seem_core.preprocess`). Module and
parameter names follow the official code, so a ``backbone.*`` state dict loads
strictly. Inference only: there is no dropout or drop-path to leave out.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ConfigError, ViTConfig

# Constants of the official D2ViT, the same for every size.
PATCH_SIZE = 16
WINDOW_SIZE = 14
MLP_RATIO = 4
LAYER_NORM_EPS = 1e-6
FEATURE_NAMES = ("res2", "res3", "res4", "res5")


def relative_position_table(rel_pos: Tensor, size: int) -> Tensor:
    """(2*size-1, C) learned table -> (size, size, C) with entry [i, j] = table[i - j + size - 1].

    The official ``get_rel_pos`` would first resize a table of another length;
    with the fixed input size every table already has length 2*size-1.
    """
    if rel_pos.shape[0] != 2 * size - 1:
        raise ValueError(f"relative position table of length {rel_pos.shape[0]} for {size} positions "
                         f"(expected {2 * size - 1})")
    index = torch.arange(size, device=rel_pos.device)
    return rel_pos[index[:, None] - index[None, :] + size - 1]


def decomposed_rel_pos_bias(q: Tensor, rel_pos_h: Tensor, rel_pos_w: Tensor, size: tuple[int, int]) -> Tensor:
    """Relative-position attention bias of MViTv2, as SAM adds it: (B, heads, h*w, h*w).

    For a query at (i, j) and a key at (k, l) the bias is q . Rh[i - k] + q . Rw[j - l]
    (q unscaled), i.e. one term per row offset and one per column offset.
    """
    h, w = size
    batch, heads, _, dim = q.shape
    grid_q = q.reshape(batch, heads, h, w, dim)
    rel_h = torch.einsum("bnhwc,hkc->bnhwk", grid_q, relative_position_table(rel_pos_h, h))
    rel_w = torch.einsum("bnhwc,wkc->bnhwk", grid_q, relative_position_table(rel_pos_w, w))
    return (rel_h[..., :, None] + rel_w[..., None, :]).reshape(batch, heads, h * w, h * w)


class Attention(nn.Module):
    """Multi-head self-attention over a (B, H, W, C) token grid with decomposed relative positions."""

    def __init__(self, dim: int, num_heads: int, grid_size: int):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * grid_size - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * grid_size - 1, head_dim))

    def forward(self, x: Tensor) -> Tensor:
        batch, h, w, dim = x.shape
        qkv = self.qkv(x).reshape(batch, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, heads, h*w, head_dim) each
        bias = decomposed_rel_pos_bias(q, self.rel_pos_h, self.rel_pos_w, (h, w))
        # softmax(q k^T / sqrt(head_dim) + bias) v, the official arithmetic in one kernel.
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(batch, h, w, dim))


def window_partition(x: Tensor, window: int) -> Tensor:
    """(B, H, W, C) -> (B * windows, window, window, C); H and W must be multiples of ``window``."""
    batch, h, w, dim = x.shape
    x = x.reshape(batch, h // window, window, w // window, window, dim)
    return x.transpose(2, 3).reshape(-1, window, window, dim)


def window_unpartition(windows: Tensor, window: int, size: tuple[int, int]) -> Tensor:
    """Inverse of :func:`window_partition` for a padded grid of ``size`` (H, W)."""
    h, w = size
    dim = windows.shape[-1]
    x = windows.reshape(-1, h // window, w // window, window, window, dim)
    return x.transpose(2, 3).reshape(-1, h, w, dim)


class MLPBlock(nn.Module):
    """Two-layer GELU feed-forward network applied to every token."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden_dim)
        self.lin2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.lin2(F.gelu(self.lin1(x)))


class Block(nn.Module):
    """Pre-norm transformer block; windowed blocks attend inside ``window`` x ``window`` tiles.

    A windowed block zero-pads the normalised token grid to a multiple of the
    window (the padding tokens take part in attention, as officially) and crops
    the result back.
    """

    def __init__(self, dim: int, num_heads: int, window: int, grid_size: int):
        super().__init__()
        self.window = window
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, num_heads, window if window else grid_size)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = MLPBlock(dim, dim * MLP_RATIO)

    def _attend(self, x: Tensor) -> Tensor:
        if not self.window:
            return self.attn(x)
        h, w = x.shape[1:3]
        pad_h, pad_w = -h % self.window, -w % self.window
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        out = self.attn(window_partition(x, self.window))
        return window_unpartition(out, self.window, (h + pad_h, w + pad_w))[:, :h, :w]

    def forward(self, x: Tensor) -> Tensor:
        x = x + self._attend(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Non-overlapping 16x16 patches -> (B, H/16, W/16, C) tokens."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, PATCH_SIZE, stride=PATCH_SIZE)

    def forward(self, images: Tensor) -> Tensor:
        return self.proj(images).permute(0, 2, 3, 1)


class SimpleFPN(nn.Module):
    """One stride-16 map -> res2..res5: 4x and 2x transposed-conv upsampling, identity, 2x strided conv.

    Layer indices inside each ``nn.Sequential`` are the official ones (they are
    in the checkpoint keys). Inner widths follow the official formulas.
    """

    def __init__(self, in_dim: int, out_dims: tuple[int, ...]):
        super().__init__()
        c4 = max(out_dims[0] * 2, in_dim // 2)
        self.down_4 = nn.Sequential(
            nn.ConvTranspose2d(in_dim, c4, 2, stride=2), nn.GroupNorm(1, c4), nn.GELU(),
            nn.ConvTranspose2d(c4, c4 // 2, 2, stride=2), nn.GroupNorm(1, c4 // 2),
            nn.Conv2d(c4 // 2, out_dims[0], 1), nn.GroupNorm(1, out_dims[0]), nn.GELU(),
        )
        c8 = max(out_dims[1], in_dim // 2)
        self.down_8 = nn.Sequential(
            nn.ConvTranspose2d(in_dim, c8, 2, stride=2), nn.GroupNorm(1, c8),
            nn.Conv2d(c8, out_dims[1], 1), nn.GroupNorm(1, out_dims[1]), nn.GELU(),
        )
        self.down_16 = nn.Sequential(
            nn.Conv2d(in_dim, out_dims[2], 1), nn.GroupNorm(1, out_dims[2]), nn.GELU(),
        )
        c32 = max(out_dims[3], in_dim * 2)
        self.down_32 = nn.Sequential(
            nn.Conv2d(in_dim, c32, 2, stride=2), nn.GroupNorm(1, c32),
            nn.Conv2d(c32, out_dims[3], 1), nn.GroupNorm(1, out_dims[3]), nn.GELU(),
        )
        self.branches = dict(zip(FEATURE_NAMES, ("down_4", "down_8", "down_16", "down_32")))

    def forward(self, x: Tensor, names: tuple[str, ...]) -> dict[str, Tensor]:
        """(B, C, H/16, W/16) -> the requested maps only (the official neck computes all four)."""
        return {name: getattr(self, self.branches[name])(x) for name in names}


def _validate(cfg: ViTConfig) -> None:
    problems = []
    if cfg.image_size <= 0 or cfg.image_size % PATCH_SIZE:
        problems.append(f"image_size {cfg.image_size} is not a positive multiple of the patch size {PATCH_SIZE}")
    if cfg.embed_dim <= 0 or cfg.num_heads <= 0 or cfg.embed_dim % cfg.num_heads:
        problems.append(f"embed_dim {cfg.embed_dim} is not a positive multiple of num_heads {cfg.num_heads}")
    bad = [i for i in cfg.global_attn_indexes if not 0 <= i < cfg.depth]
    if bad:
        problems.append(f"global_attn_indexes {bad} outside the {cfg.depth} blocks")
    if len(cfg.neck_out_dims) != len(FEATURE_NAMES):
        problems.append(f"neck_out_dims has {len(cfg.neck_out_dims)} entries, expected 4 (res2..res5)")
    unknown = [name for name in cfg.out_features if name not in FEATURE_NAMES]
    if unknown or not cfg.out_features:
        problems.append(f"out_features {list(cfg.out_features)} must be a non-empty subset of {list(FEATURE_NAMES)}")
    if problems:
        raise ConfigError("invalid ViT backbone config: " + "; ".join(problems))


class SAMViT(nn.Module):
    """SAM ViT + SimpleFPN: padded (B, 3, S, S) images -> ``res2..res5`` maps (strides 4..32)."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        _validate(cfg)
        self.image_size = cfg.image_size
        grid = cfg.image_size // PATCH_SIZE
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, cfg.embed_dim))
        self.patch_embed = PatchEmbed(cfg.embed_dim)
        self.blocks = nn.ModuleList(
            Block(cfg.embed_dim, cfg.num_heads, 0 if i in cfg.global_attn_indexes else WINDOW_SIZE, grid)
            for i in range(cfg.depth))
        self.neck = SimpleFPN(cfg.embed_dim, cfg.neck_out_dims)
        self.out_features = tuple(cfg.out_features)
        channels = dict(zip(FEATURE_NAMES, cfg.neck_out_dims))
        self.out_channels: dict[str, int] = {name: channels[name] for name in self.out_features}

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        expected = (3, self.image_size, self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"the SAM ViT takes (B, {', '.join(map(str, expected))}) images (padded to its fixed input size), "
                f"got shape {tuple(images.shape)}")
        x = self.patch_embed(images) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2), self.out_features)
