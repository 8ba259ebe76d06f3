"""Sampling H hypotheses of 3D poses for 2D windows: denoiser + sampler + test-time flip."""

from __future__ import annotations

import torch

from htpose.data.sequences import flip_2d, flip_3d
from htpose.diffusion.ddim import DDIMSampler, Generators
from htpose.model.denoiser import Denoiser


@torch.no_grad()
def sample_hypotheses(
    model: Denoiser,
    sampler: DDIMSampler,
    keypoints_2d: torch.Tensor,
    hypotheses: int,
    flip_test: bool = True,
    generator: Generators = None,
) -> torch.Tensor:
    """Lift normalised 2D windows ``(B, F, J, 2)`` to ``(B, H, F, J, 3)`` root-relative poses.

    Hypotheses are folded into the batch. Everything that depends on the 2D alone (its
    embedding, for the plain and the flipped input) is computed once, not per step. With
    ``flip_test`` every denoising step averages the prediction with the mirrored one (D3DP).
    For the HTP model the frames TCEP keeps are chosen here too, once for all H x K calls.
    ``generator`` may be a list of B generators, one per window (see ``DDIMSampler.sample``).
    """
    b = keypoints_2d.shape[0]
    cond = model.encode_condition(keypoints_2d).repeat_interleave(hypotheses)
    cond_flip = None
    if flip_test:
        cond_flip = model.encode_condition(flip_2d(keypoints_2d)).repeat_interleave(hypotheses)

    def predict_y0(y_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        y0 = model(y_t, t, cond)
        if cond_flip is not None:
            y0 = (y0 + flip_3d(model(flip_3d(y_t), t, cond_flip))) / 2
        return y0

    shape = (b * hypotheses, *keypoints_2d.shape[1:3], 3)
    y0 = sampler.sample(predict_y0, shape, generator, keypoints_2d.device, keypoints_2d.dtype)
    y0 = y0 - y0[..., :1, :]  # poses are root-relative by definition
    return y0.reshape(b, hypotheses, *y0.shape[1:])
