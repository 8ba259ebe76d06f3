"""Sampling H hypotheses of 3D poses for 2D windows: denoiser + sampler + test-time flip."""

from __future__ import annotations

import torch

from htpose.data.sequences import flip_2d, flip_3d
from htpose.diffusion.ddim import DDIMSampler, Generators
from htpose.model.denoiser import Denoiser

FLIP_MODES = ("none", "average", "split")
# Sequences per denoiser call when sampling on a CPU. Larger calls are slower there: the
# temporal attention scores of a few hundred sequences outgrow the caches (lift at H = 20,
# split flip, 2 threads: 3.0 s in calls of 16, 6.2 s in one call; 8 to 16 measured alike,
# 24 and up slower; same output). GPUs get the whole batch at once.
ROWS_PER_CALL = 16


def _denoise(model: Denoiser, y_t: torch.Tensor, t: torch.Tensor, cond) -> torch.Tensor:
    """``model(y_t, t, cond)`` in calls of at most ``ROWS_PER_CALL`` sequences."""
    n = y_t.shape[0]
    if n <= ROWS_PER_CALL or y_t.device.type != "cpu":
        return model(y_t, t, cond)
    parts = [
        model(y_t[i : i + ROWS_PER_CALL], t[i : i + ROWS_PER_CALL],
              cond.rows(slice(i, i + ROWS_PER_CALL)))
        for i in range(0, n, ROWS_PER_CALL)
    ]  # fmt: skip
    return torch.cat(parts)


def flip_mode(flip: bool | str, default: str = "average") -> str:
    """``True`` -> ``default`` (a config's ``diffusion.flip_mode``), ``False`` -> ``"none"``;
    a mode name is checked."""
    if isinstance(flip, bool):
        return flip_mode(default) if flip else "none"
    if flip not in FLIP_MODES:
        raise ValueError(f"flip mode must be one of {', '.join(FLIP_MODES)}, got {flip!r}")
    return flip


def flip_passes(flip: bool | str) -> int:
    """Denoiser calls per hypothesis and step: 2 when every step averages the mirror."""
    return 2 if flip_mode(flip) == "average" else 1


@torch.no_grad()
def sample_hypotheses(
    model: Denoiser,
    sampler: DDIMSampler,
    keypoints_2d: torch.Tensor,
    hypotheses: int,
    flip_test: bool | str = True,
    generator: Generators = None,
) -> torch.Tensor:
    """Lift normalised 2D windows ``(B, F, J, 2)`` to ``(B, H, F, J, 3)`` root-relative poses.

    Hypotheses are folded into the batch. Everything that depends on the 2D alone (its
    embedding, for the plain and the flipped input) is computed once, not per step. For the
    HTP model the frames TCEP keeps are chosen here too, once for all H x K calls.
    ``flip_test``: ``"average"`` (or True) averages every denoising step's prediction with
    the mirrored one (D3DP; twice the cost); ``"split"`` lets every second hypothesis see
    the mirrored input instead (the same symmetry at no extra cost; hypotheses alternate
    plain, mirrored, so any first ``h`` of them are balanced); ``"none"`` (or False).
    ``generator`` may be a list of B generators, one per window (see ``DDIMSampler.sample``).
    """
    mode = flip_mode(flip_test)
    if mode == "split" and hypotheses > 1:
        return _sample_split(model, sampler, keypoints_2d, hypotheses, generator)
    b = keypoints_2d.shape[0]
    cond = model.encode_condition(keypoints_2d).repeat_interleave(hypotheses)
    cond_flip = None
    if mode == "average":
        cond_flip = model.encode_condition(flip_2d(keypoints_2d)).repeat_interleave(hypotheses)

    def predict_y0(y_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        y0 = _denoise(model, y_t, t, cond)
        if cond_flip is not None:
            y0 = (y0 + flip_3d(_denoise(model, flip_3d(y_t), t, cond_flip))) / 2
        return y0

    shape = (b * hypotheses, *keypoints_2d.shape[1:3], 3)
    y0 = sampler.sample(predict_y0, shape, generator, keypoints_2d.device, keypoints_2d.dtype)
    y0 = y0 - y0[..., :1, :]  # poses are root-relative by definition
    return y0.reshape(b, hypotheses, *y0.shape[1:])


def _sample_split(
    model: Denoiser, sampler: DDIMSampler, keypoints_2d: torch.Tensor, hypotheses: int,
    generator: Generators,
) -> torch.Tensor:  # fmt: skip
    """``ceil(H/2)`` hypotheses from the plain 2D and ``floor(H/2)`` from the mirrored 2D
    (mirrored back), interleaved: ``(B, H, F, J, 3)``. Rows stay grouped by window (its
    plain hypotheses, then its mirrored ones), as per-window generators expect."""
    b = keypoints_2d.shape[0]
    device = keypoints_2d.device
    plain = (hypotheses + 1) // 2
    cond = model.encode_condition(torch.cat([keypoints_2d, flip_2d(keypoints_2d)]))
    per_window = torch.arange(hypotheses, device=device) >= plain  # mirrored hypotheses
    window = torch.arange(b, device=device).repeat_interleave(hypotheses)
    mirror = per_window.repeat(b)
    cond = cond.rows(window + b * mirror)
    # Hypotheses of the mirrored inputs are mirrored poses: flip y_t in and y_0 out.
    m = mirror[:, None, None, None]

    def predict_y0(y_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        y0 = _denoise(model, torch.where(m, flip_3d(y_t), y_t), t, cond)
        return torch.where(m, flip_3d(y0), y0)

    shape = (b * hypotheses, *keypoints_2d.shape[1:3], 3)
    y0 = sampler.sample(predict_y0, shape, generator, device, keypoints_2d.dtype)
    y0 = (y0 - y0[..., :1, :]).reshape(b, hypotheses, *y0.shape[1:])
    out = torch.empty_like(y0)
    out[:, 0::2] = y0[:, :plain]
    out[:, 1::2] = y0[:, plain:]
    return out
