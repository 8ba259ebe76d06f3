"""Multi-head self-attention over one token axis, on PyTorch's scaled_dot_product_attention.

The temporal blocks after TCEP take ``memory``: keys that are read but not updated (frames
pruned by TCEP, when attention is not restricted to the kept frames; with SFT MHSA, the
default, the kept frames attend to each other only and there is no memory).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Up to this many keys, plain matrix products beat PyTorch's fused CPU attention kernel
# (2 threads, head size 16: 17 keys 11.8 vs 37.7 ms, 40 keys 7.4 vs 17.5 ms; at 81 keys the
# fused kernel wins, 35 vs 107 ms). Same result either way.
SHORT_KEYS = 48
# PyTorch's CPU softmax is not vectorised over rows shorter than 16 (13x slower per element
# at 10 keys than at 16 in torch 2.13), which merged HTP tokens (10 at merge 0.25) hit.
SHORT_ROWS = 16


class SelfAttention(nn.Module):
    """Multi-head self-attention: tokens ``(N, L, C)`` -> ``(N, L, C)``.

    ``memory`` ``(N, M, C)``: extra keys/values (already normalised like ``x``).
    """

    def __init__(self, width: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        n, length, c = x.shape
        h, d = self.heads, c // self.heads
        q, k, v = self.qkv(x).reshape(n, length, 3, h, d).permute(2, 0, 3, 1, 4)  # (N, h, L, d)
        if memory is not None:
            # Only the key/value part of the projection runs on memory tokens.
            w_kv, b_kv = self.qkv.weight[c:], self.qkv.bias[c:]
            mk, mv = F.linear(memory, w_kv, b_kv).reshape(n, -1, 2, h, d).permute(2, 0, 3, 1, 4)
            k, v = torch.cat([k, mk], dim=2), torch.cat([v, mv], dim=2)
        drop = self.dropout if self.training else 0.0
        out = attend(q, k, v, drop, self.training)
        return self.proj(out.transpose(1, 2).reshape(n, length, c))


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, drop: float = 0.0, training: bool = False
) -> torch.Tensor:
    """Scaled dot-product attention of ``(..., Lq, d)`` queries over ``(..., Lk, d)`` keys:
    plain matrix products for few keys on a CPU (see ``SHORT_KEYS``), else the fused kernel."""
    if k.shape[-2] <= SHORT_KEYS and q.device.type == "cpu":
        scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
        return F.dropout(_softmax_last(scores), drop, training) @ v
    return F.scaled_dot_product_attention(q, k, v, dropout_p=drop if training else 0.0)


def _softmax_last(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis; spelled out for rows shorter than :data:`SHORT_ROWS`."""
    if scores.shape[-1] >= SHORT_ROWS:
        return scores.softmax(dim=-1)
    e = (scores - scores.amax(dim=-1, keepdim=True).detach()).exp()
    return e / e.sum(dim=-1, keepdim=True)
