"""Recovery: from the pruned token sequence back to every frame of the window.

Each frame's query is its own token from the layer where TCEP pruned (so every frame keeps
its own 2D evidence) plus a learned, zero-initialised frame query (HoT's TRA starts from
such queries alone); per joint, the queries cross-attend over time to the final pruned
tokens, and the result is added to the query token. Cost: two projections per frame token
and two per pruned token, about an eighth of one block pair.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Recovery(nn.Module):
    """Pruning-layer tokens ``(N, F, J, C)`` + pruned ``(N, n, J, C)`` -> ``(N, F, J, C)``."""

    def __init__(self, frames: int, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Parameter(torch.zeros(1, frames, 1, width))
        self.norm_q = nn.LayerNorm(width)
        self.norm_kv = nn.LayerNorm(width)
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, full: torch.Tensor, pruned: torch.Tensor) -> torch.Tensor:
        b, f, j, c = full.shape
        n = pruned.shape[1]
        h, d = self.heads, c // self.heads
        queries = self.norm_q(full + self.query).permute(0, 2, 1, 3).reshape(b * j, f, c)
        memory = self.norm_kv(pruned).permute(0, 2, 1, 3).reshape(b * j, n, c)
        q = self.q(queries).reshape(b * j, f, h, d).transpose(1, 2)
        k, v = self.kv(memory).reshape(b * j, n, 2, h, d).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b * j, f, c)
        out = self.proj(out).reshape(b, j, f, c).permute(0, 2, 1, 3)
        return full + out
