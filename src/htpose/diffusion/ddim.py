"""DDIM sampling (Song et al.) as a scheduler object, independent of the network.

The network is reached only through ``predict_y0(y_t, t) -> y_0``, like the schedulers of
diffusers. Timesteps follow D3DP: ``linspace(-1, T - 1, K + 1)`` as integers, reversed
(K = 5: 999, 799, 599, 399, 199, -1); ``eta = 1`` by default, as D3DP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from htpose.diffusion.schedule import NoiseSchedule

if TYPE_CHECKING:
    from htpose.config import DiffusionConfig

PredictY0 = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Generators = torch.Generator | list[torch.Generator] | None


def randn(
    shape: tuple[int, ...] | torch.Size,
    generator: Generators,
    device: torch.device | str,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Standard normal noise; a list of G generators fills N / G consecutive rows each."""
    if not isinstance(generator, list):
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    rows = shape[0] // len(generator)
    if rows * len(generator) != shape[0]:
        raise ValueError(f"{len(generator)} generators cannot split a batch of {shape[0]}")
    return torch.cat(
        [
            torch.randn((rows, *shape[1:]), generator=g, device=device, dtype=dtype)
            for g in generator
        ]
    )


class DDIMSampler:
    """K-step DDIM from pure noise to ``y_0``.

    ``clip`` bounds each ``y_0`` prediction to ``[-clip, clip]`` before re-noising (D3DP:
    1.1 x the data scale, i.e. 1.1 m for root-relative poses in metres); None disables it.
    """

    def __init__(
        self, schedule: NoiseSchedule, steps: int, eta: float = 1.0, clip: float | None = 1.1
    ):
        if not 1 <= steps <= schedule.num_steps:
            raise ValueError(f"steps must be in [1, {schedule.num_steps}], got {steps}")
        self.schedule = schedule
        self.steps = steps
        self.eta = eta
        self.clip = clip

    @classmethod
    def from_config(cls, diffusion: DiffusionConfig, steps: int) -> DDIMSampler:
        """The sampler of a config's ``diffusion:`` section, with K = ``steps``."""
        schedule = NoiseSchedule(diffusion.timesteps, diffusion.schedule)
        return cls(schedule, steps, diffusion.eta, diffusion.clip_denoised)

    def timesteps(self) -> list[tuple[int, int]]:
        """(t, t_next) pairs from ``T - 1`` down to ``-1``."""
        ts = torch.linspace(-1, self.schedule.num_steps - 1, self.steps + 1).long().tolist()
        ts = ts[::-1]
        return list(zip(ts[:-1], ts[1:]))

    @torch.no_grad()
    def sample(
        self,
        predict_y0: PredictY0,
        shape: tuple[int, ...],
        generator: Generators = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Run the reverse process for samples of ``shape`` ``(N, ...)``; returns ``y_0``.

        ``generator``: one generator for all samples, or a list of G generators, each
        drawing the noise of its own N / G consecutive samples (so a sample's noise does not
        depend on what else is in the batch).
        """
        y = randn(shape, generator, device, dtype)
        y0 = y
        for t, t_next in self.timesteps():
            t_batch = torch.full((shape[0],), t, device=device, dtype=torch.long)
            y0 = predict_y0(y, t_batch)
            if self.clip is not None:
                y0 = y0.clamp(-self.clip, self.clip)
            if t_next < 0:
                break
            y = self.step(y, y0, t, t_next, generator)
        return y0

    def step(
        self,
        y: torch.Tensor,
        y0: torch.Tensor,
        t: int,
        t_next: int,
        generator: Generators,
    ) -> torch.Tensor:
        """One DDIM update from level ``t`` to ``t_next`` given the prediction ``y0``."""
        a = self.schedule.alpha_bar(torch.tensor(t)).item()
        a_next = self.schedule.alpha_bar(torch.tensor(t_next)).item()
        eps = (y - a**0.5 * y0) / (1 - a) ** 0.5
        sigma = self.eta * ((1 - a / a_next) * (1 - a_next) / (1 - a)) ** 0.5
        c = max(1 - a_next - sigma**2, 0.0) ** 0.5
        noise = randn(y.shape, generator, y.device, y.dtype)
        return a_next**0.5 * y0 + c * eps + sigma * noise
