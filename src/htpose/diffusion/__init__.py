"""Noise schedule and sampler (separate from the network) and the sampling pipeline."""

from htpose.diffusion.ddim import DDIMSampler
from htpose.diffusion.schedule import NoiseSchedule

__all__ = ["DDIMSampler", "NoiseSchedule"]
