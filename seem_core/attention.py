"""The three post-norm transformer layers of the SEEM decoder.

Parameter names follow ``torch.nn.MultiheadAttention`` (``in_proj_weight``,
``in_proj_bias``, ``out_proj``) so official checkpoints load unchanged. Tensors
are batch-first ``(B, L, C)``. Keys and values may have batch size 1 while the
queries have batch size B: the decoder decodes several objects against one
frame, and the frame's keys/values are then projected once and shared.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MultiheadAttention(nn.Module):
    """Scaled dot-product attention with a boolean "blocked" mask.

    A query row whose every key is blocked gets zero attention output, as the
    official SEEM attention does (``softmax(...).nan_to_num()``).
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.MultiheadAttention``'s initialisation, so an unloaded model is random, not garbage."""
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def project(self, x: Tensor, which: int) -> Tensor:
        """Apply the query (0), key (1) or value (2) projection and split heads: (B, h, L, d)."""
        dim = self.out_proj.in_features
        w = self.in_proj_weight[which * dim:(which + 1) * dim]
        b = self.in_proj_bias[which * dim:(which + 1) * dim]
        y = F.linear(x, w, b)
        return y.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, blocked: Tensor | None = None) -> Tensor:
        """Attention on projected heads. ``blocked``: (B, 1 or h, Lq, Lk), True = may not attend.

        Keys and values of batch 1 (one frame's features) serve every query batch (its
        objects) without being copied per object. The fused kernel never materialises
        the (B, h, Lq, Lk) weights; a row with every key blocked comes out NaN there and
        is zeroed, as the official ``nan_to_num`` does.
        """
        batch = q.shape[0]
        if k.shape[0] == 1 and batch > 1:  # fold the objects into the query rows of one batch
            heads, rows = q.shape[1], q.shape[2]
            q = q.transpose(0, 1).reshape(1, heads, batch * rows, -1)
            if blocked is not None:  # a mask shared by the heads stays shared (1 x, not heads x, the memory)
                blocked = blocked.expand(batch, -1, rows, -1).transpose(0, 1).reshape(1, -1, batch * rows,
                                                                                       blocked.shape[-1])
            out = self._fused(q, k, v, blocked).reshape(heads, batch, rows, -1).transpose(0, 1)
        else:
            out = self._fused(q, k, v, blocked)
        return self.out_proj(out.transpose(1, 2).flatten(2))

    @staticmethod
    def _fused(q: Tensor, k: Tensor, v: Tensor, blocked: Tensor | None) -> Tensor:
        if blocked is None:
            return F.scaled_dot_product_attention(q, k, v)
        # Additive: a boolean mask is inverted and converted to one inside the kernel anyway.
        additive = torch.zeros(blocked.shape, dtype=q.dtype, device=q.device).masked_fill_(blocked, float("-inf"))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=additive).nan_to_num(0.0)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, blocked: Tensor | None = None) -> Tensor:
        return self.attend(self.project(query, 0), self.project(key, 1), self.project(value, 2), blocked)


class CrossAttentionLayer(nn.Module):
    """Object queries attend to one level of image features (masked attention)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.multihead_attn = MultiheadAttention(dim, num_heads)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, query_pos: Tensor, keys: Tensor, values: Tensor, blocked: Tensor) -> Tensor:
        """``keys``/``values`` are already projected (shared by every object of a frame)."""
        attn = self.multihead_attn
        out = attn.attend(attn.project(x + query_pos, 0), keys, values, blocked)
        return self.norm(x + out)


class SelfAttentionLayer(nn.Module):
    """Object queries attend to each other and to the prompt tokens."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.self_attn = MultiheadAttention(dim, num_heads)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, pos: Tensor, context_keys: Tensor, context_values: Tensor,
                blocked: Tensor | None) -> Tensor:
        """Update ``x`` (B, Q, C) from keys/values over ``[x; context]``.

        The context (prompt tokens) comes projected, (B, heads, T, d): see
        :meth:`context_keys_values`. Only the rows of ``x`` are computed: SEEM
        discards the outputs of the prompt-token rows (fresh tokens enter every
        layer), and attention and layer norm act row by row, so skipping them
        changes nothing.
        """
        attn = self.self_attn
        query_key = x + pos
        keys = torch.cat([attn.project(query_key, 1), context_keys], dim=2)
        values = torch.cat([attn.project(x, 2), context_values], dim=2)
        return self.norm(x + attn.attend(attn.project(query_key, 0), keys, values, blocked))

    def context_keys_values(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of prompt tokens (B, T, C), which are their own position code (as officially)."""
        return self.self_attn.project(tokens + tokens, 1), self.self_attn.project(tokens, 2)


class FFNLayer(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.linear2(F.relu(self.linear1(x))))


class MLP(nn.Module):
    """Linear layers with ReLU between them (SEEM's mask-embedding head)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int):
        super().__init__()
        dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x
