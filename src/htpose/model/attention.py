"""Multi-head self-attention over one token axis, on PyTorch's scaled_dot_product_attention.

The temporal blocks after TCEP use two extensions (SFT MHSA, the attention level of HTP):
``memory`` adds keys that are read but not updated (frames pruned by TCEP, when attention is
not restricted to the kept frames), and ``topk`` lets each query attend only to its ``topk``
highest-scoring keys (sparse focus; computed explicitly, since it needs the scores).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    """Multi-head self-attention: tokens ``(N, L, C)`` -> ``(N, L, C)``.

    ``memory`` ``(N, M, C)``: extra keys/values (already normalised like ``x``).
    ``topk`` > 0: each query keeps only its ``topk`` strongest keys.
    """

    def __init__(self, width: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.dropout = dropout

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor | None = None, topk: int = 0
    ) -> torch.Tensor:
        n, length, c = x.shape
        h, d = self.heads, c // self.heads
        q, k, v = self.qkv(x).reshape(n, length, 3, h, d).permute(2, 0, 3, 1, 4)  # (N, h, L, d)
        if memory is not None:
            # Only the key/value part of the projection runs on memory tokens.
            w_kv, b_kv = self.qkv.weight[c:], self.qkv.bias[c:]
            mk, mv = F.linear(memory, w_kv, b_kv).reshape(n, -1, 2, h, d).permute(2, 0, 3, 1, 4)
            k, v = torch.cat([k, mk], dim=2), torch.cat([v, mv], dim=2)
        drop = self.dropout if self.training else 0.0
        if 0 < topk < k.shape[2]:
            scores = (q @ k.transpose(-1, -2)) * d**-0.5
            cutoff = scores.topk(topk, dim=-1).values[..., -1:]
            scores = scores.masked_fill(scores < cutoff, float("-inf"))
            out = F.dropout(scores.softmax(dim=-1), drop, self.training) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        return self.proj(out.transpose(1, 2).reshape(n, length, c))
