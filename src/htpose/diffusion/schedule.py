"""The forward (noising) process: ``y_t = sqrt(a_t) y_0 + sqrt(1 - a_t) e``."""

from __future__ import annotations

import math

import torch


class NoiseSchedule:
    """Cumulative signal levels ``a_t`` for ``t = 0 .. num_steps - 1``.

    ``kind="cosine"`` is the improved-DDPM cosine schedule (offset ``s = 0.008``, betas
    clipped at 0.999) that D3DP uses; ``"linear"`` is the original DDPM schedule.
    """

    def __init__(self, num_steps: int = 1000, kind: str = "cosine") -> None:
        if num_steps < 1:
            raise ValueError("num_steps must be positive")
        self.num_steps = num_steps
        self.kind = kind
        if kind == "cosine":
            s = 0.008
            x = torch.linspace(0, num_steps, num_steps + 1, dtype=torch.float64)
            f = torch.cos((x / num_steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = (1 - f[1:] / f[:-1]).clamp(0, 0.999)
        elif kind == "linear":
            scale = 1000 / num_steps
            betas = torch.linspace(scale * 1e-4, scale * 0.02, num_steps, dtype=torch.float64)
        else:
            raise ValueError(f"unknown schedule {kind!r}; choose 'cosine' or 'linear'")
        self.alphas_cumprod = torch.cumprod(1 - betas, dim=0)

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """``a_t`` for integer timesteps; ``t = -1`` gives 1 (no noise), float64."""
        t = torch.as_tensor(t, dtype=torch.long)
        table = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod])
        return table[(t + 1).cpu()]

    def add_noise(self, y0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Noise ``y0`` ``(N, ...)`` to level ``t`` ``(N,)``."""
        a = self.alpha_bar(t).to(y0).reshape(-1, *([1] * (y0.ndim - 1)))
        return a.sqrt() * y0 + (1 - a).sqrt() * noise
