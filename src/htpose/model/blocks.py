"""Pre-norm transformer block, MLP and stochastic depth."""

from __future__ import annotations

import torch
from torch import nn

from htpose.model.attention import SelfAttention


def drop_path(x: torch.Tensor, prob: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole samples of a residual branch with probability ``prob``."""
    if prob == 0.0 or not training:
        return x
    keep = 1.0 - prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    return x * x.new_empty(shape).bernoulli_(keep) / keep


class MLP(nn.Module):
    """Linear -> GELU -> Linear, ``(..., C)`` -> ``(..., C)``."""

    def __init__(self, width: int, ratio: float, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = int(width * ratio)
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``; ``(N, L, C)``."""

    def __init__(
        self, width: int, heads: int, mlp_ratio: float, drop_path: float = 0.0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads, dropout)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = MLP(width, mlp_ratio, dropout)
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        """``memory`` ``(N, M, C)``: extra keys/values (unnormalised, read-only)."""
        mem = None if memory is None else self.norm1(memory)
        x = x + drop_path(self.attn(self.norm1(x), mem), self.drop_path, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)
