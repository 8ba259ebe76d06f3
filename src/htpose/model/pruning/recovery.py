"""Recovery: from the pruned token sequence back to every frame of the window.

Two stages (our design; the paper does not publish its recovery):

1. **Residual propagation** (``mode="propagate"``, parameter-free). Every kept frame gets
   its own fully processed token back: after MGPTP each member of a cluster keeps its own
   pre-merge token plus the update its cluster received after merging (ToMe-style
   unmerging). The update each kept frame received since the pruning layer is then
   interpolated linearly in time to the pruned frames, whose own pruning-layer tokens it
   is added to. Kept frames come out exactly as processed; pruned frames get what their
   neighbours learned, on top of their own 2D evidence.
2. **Cross-attention** (always). Per joint, every frame's token (plus a learned,
   zero-initialised frame query, as in HoT's TRA) attends over time to the final pruned
   tokens; the result is added back.

``mode="attend"`` skips stage 1 (queries are the pruning-layer tokens), the HoT-like
variant kept for ablations. Cost: two projections per frame token and two per pruned
token, about an eighth of one block pair.
"""

from __future__ import annotations

import torch
from torch import nn

from htpose.model.attention import attend

RECOVERY_MODES = ("propagate", "attend")


def interpolate_frames(values: torch.Tensor, kept: torch.Tensor, frames: int) -> torch.Tensor:
    """Linear interpolation in time of per-kept-frame values ``(N, n, ...)`` at sorted
    frame indices ``kept`` ``(N, n)`` (first and last frame included) to ``(N, F, ...)``."""
    n_batch, n = kept.shape
    t = torch.arange(frames, device=kept.device).expand(n_batch, frames).contiguous()
    # searchsorted(kept, t) as a comparison count: exportable to ONNX, and n is small.
    right = (kept[:, None, :] < t[:, :, None]).sum(-1).clamp(1, n - 1)
    left = right - 1
    k_left, k_right = kept.gather(1, left), kept.gather(1, right)
    w = ((t - k_left).float() / (k_right - k_left).clamp_min(1).float()).clamp(0, 1)
    extra = values.shape[2:]
    shape = (n_batch, frames) + (1,) * len(extra)
    v_left = values.gather(1, left.reshape(shape).expand(n_batch, frames, *extra))
    v_right = values.gather(1, right.reshape(shape).expand(n_batch, frames, *extra))
    w = w.reshape(shape).to(values.dtype)
    return v_left * (1 - w) + v_right * w


class Recovery(nn.Module):
    """Pruning-layer tokens ``(N, F, J, C)`` + kept-frame tokens ``(N, n, J, C)`` (their
    frames ``kept`` ``(N, n)``) + final pruned tokens ``(N, m, J, C)`` -> ``(N, F, J, C)``."""

    def __init__(self, frames: int, width: int, heads: int, mode: str = "propagate") -> None:
        super().__init__()
        if mode not in RECOVERY_MODES:
            raise ValueError(f"unknown recovery mode {mode!r}; choose from {RECOVERY_MODES}")
        self.mode = mode
        self.heads = heads
        self.query = nn.Parameter(torch.zeros(1, frames, 1, width))
        self.norm_q = nn.LayerNorm(width)
        self.norm_kv = nn.LayerNorm(width)
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(width, width)

    def forward(
        self,
        full: torch.Tensor,
        kept_tokens: torch.Tensor,
        kept: torch.Tensor,
        pruned: torch.Tensor,
    ) -> torch.Tensor:
        b, f, j, c = full.shape
        if self.mode == "propagate":
            start = full.gather(1, kept[:, :, None, None].expand(-1, -1, j, c))
            full = full + interpolate_frames(kept_tokens - start, kept, f)
        n = pruned.shape[1]
        h, d = self.heads, c // self.heads
        queries = self.norm_q(full + self.query).permute(0, 2, 1, 3).reshape(b * j, f, c)
        memory = self.norm_kv(pruned).permute(0, 2, 1, 3).reshape(b * j, n, c)
        q = self.q(queries).reshape(b * j, f, h, d).transpose(1, 2)
        k, v = self.kv(memory).reshape(b * j, n, 2, h, d).permute(2, 0, 3, 1, 4)
        out = attend(q, k, v).transpose(1, 2).reshape(b * j, f, c)
        out = self.proj(out).reshape(b, j, f, c).permute(0, 2, 1, 3)
        return full + out
