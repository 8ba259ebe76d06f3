"""TCEP: Temporal Correlation-Enhanced Pruning, the frame level of HTP.

Essential frames are chosen from the 2D condition alone, so the choice is made once per clip
and reused for every hypothesis and diffusion step.

The adaptive temporal motion graph (our formulation; the paper does not publish its exact
formula): every frame ``i`` gets a motion vector ``v_i``, the central difference of its
root-relative 2D pose. Frames ``i`` and ``j`` at most ``radius`` apart are joined with
weight ``cos(v_i, v_j)`` when it reaches ``threshold`` (eta) times the strongest edge of
``i`` (adaptive sparsification), and distance-discounted by ``exp(-|i - j| / radius)``. A
frame whose motion agrees with its neighbours is redundant (linear motion is recovered
from its neighbours); a frame that moves, and moves differently from its neighbours, is
essential, and so is a frame where the motion changes (its acceleration ``a_i``, which also
catches turning points, where the central velocity itself vanishes)::

    redundancy_i = sum_j w_ij A_ij / sum_j w_ij
    score_i      = (|v_i| / s + beta) * (1 - redundancy_i + beta) + |a_i| / s

with ``s`` the window's mean speed, so scores compare frames within a window.

Frames are then picked greedily by score, each pick damping the scores of frames closer
than the mean spacing ``F / n`` (so kept frames spread over the window and never leave a
moving stretch unrepresented); the two ends are always kept.

``keyframe`` scoring reads "redundant" literally, as keyframe reduction in animation does: a
frame is redundant when the linear interpolation of its kept neighbours already gives its
root-relative 2D pose. Starting from the two ends, it adds the frame worst explained that
way, one at a time. Recovery starts from exactly that interpolation, so this choice leaves
recovery the least to do; on ground-truth 3D it leaves as little as evenly spaced frames or
less, where the motion graph leaves up to 4x more (``benchmarks/tcep_interpolation.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Above this many frames (windows x frames) a GPU plan's greedy loop stays on the device
# (benchmarks/tcep_plan_speed.py on an H200: the host loop was 3-11x faster up to 16 x 243,
# 2x slower at 128 x 243).
HOST_LOOP_MAX_CELLS = 12_000
SCORE_FLOOR = 0.1  # beta: keeps static and linear stretches comparable rather than all zero


@dataclass
class FramePlan:
    """Which frames of each window are kept.

    ``kept`` ``(N, n)`` and ``pruned`` ``(N, F - n)`` hold sorted frame indices; ``scores``
    ``(N, F)`` the essentialness of every frame.
    """

    kept: torch.Tensor
    pruned: torch.Tensor
    scores: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """``(N, F)`` boolean, True for kept frames."""
        m = torch.zeros_like(self.scores, dtype=torch.bool)
        return m.scatter(1, self.kept, True)

    def repeat_interleave(self, times: int) -> FramePlan:
        return FramePlan(
            *(t.repeat_interleave(times, dim=0) for t in (self.kept, self.pruned, self.scores))
        )

    def rows(self, index: slice | torch.Tensor) -> FramePlan:
        return FramePlan(*(t[index] for t in (self.kept, self.pruned, self.scores)))


def motion_graph_scores(keypoints_2d: torch.Tensor, threshold: float, radius: int) -> torch.Tensor:
    """Essentialness ``(N, F)`` of every frame of normalised 2D windows ``(N, F, J, 2)``.

    The graph only joins frames at most ``radius`` apart, so it is held as ``(N, F, 2R)``
    edges to the neighbours at offsets ``-R..-1, 1..R`` rather than a dense ``(N, F, F)``
    matrix (what the dense form cost: benchmarks/tcep_plan_speed.py).
    """
    n, f = keypoints_2d.shape[:2]
    pose = (keypoints_2d - keypoints_2d[..., :1, :]).reshape(n, f, -1).double()
    idx = torch.arange(f, device=pose.device)
    prev, nxt = idx.sub(1).clamp_min(0), idx.add(1).clamp_max(f - 1)
    vel = (pose[:, nxt] - pose[:, prev]) / 2  # (N, F, D)
    accel = pose[:, nxt] - 2 * pose + pose[:, prev]
    speed = vel.norm(dim=-1)  # (N, F)
    unit = vel / speed.clamp_min(1e-9)[..., None]
    corr, weight = _banded_motion_correlation(unit, radius)  # (N, F, 2R), (F, 2R)
    strongest = corr.amax(dim=-1, keepdim=True)
    adj = torch.where(corr >= threshold * strongest, corr, torch.zeros_like(corr))
    redundancy = (adj * weight).sum(-1) / weight.sum(-1).clamp_min(1e-9)
    scale = speed.mean(dim=1, keepdim=True).clamp_min(1e-6)
    score = (speed / scale + SCORE_FLOOR) * (1 - redundancy + SCORE_FLOOR) + accel.norm(
        dim=-1
    ) / scale
    return score.to(keypoints_2d.dtype)


def _banded_motion_correlation(unit: torch.Tensor, radius: int) -> tuple[torch.Tensor, ...]:
    """Non-negative cosine ``(N, F, 2R)`` between each frame's motion ``unit`` ``(N, F, D)``
    and its neighbours' at offsets ``-R..-1, 1..R`` (0 past the window's ends), and the
    distance weights ``exp(-|offset| / R)`` ``(F, 2R)`` (0 where there is no neighbour)."""
    n, f = unit.shape[:2]
    reach = min(radius, f - 1)
    corr = unit.new_zeros(n, f, 2 * radius)
    weight = unit.new_zeros(f, 2 * radius)
    for d in range(1, reach + 1):
        c = (unit[:, :-d] * unit[:, d:]).sum(-1).clamp_min(0)  # frame i with frame i + d
        w = torch.exp(torch.tensor(-d / radius, dtype=unit.dtype))
        corr[:, :-d, radius + d - 1] = c
        corr[:, d:, radius - d] = c
        weight[:-d, radius + d - 1] = w
        weight[d:, radius - d] = w
    return corr, weight


def greedy_spread(scores: torch.Tensor, count: int) -> torch.Tensor:
    """``(N, F)`` boolean mask of ``count`` frames: both ends, then the best-scoring frames,
    each pick damping the frames within the mean spacing around it.

    The picks are sequential, so the loop runs ``count - 2`` times. Eagerly it runs in NumPy
    on the host: as torch ops each pass is a handful of tiny kernels, which on a GPU made
    the pruned model slower than the unpruned one at one window (benchmarks/RESULTS.md,
    section 2). On a GPU with many windows the device loop is kept: its cost is per pass,
    while the host's grows with the windows, and on an H200 the two crossed at about
    ``HOST_LOOP_MAX_CELLS`` frames (``N x F``). Under tracing (ONNX export) or compilation
    the torch loop is used, so the choice stays part of the graph. Both compute in float64
    and pick the same frames.
    """
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return _greedy_spread_torch(scores, count)
    if scores.device.type != "cpu" and scores.numel() > HOST_LOOP_MAX_CELLS:
        return _greedy_spread_torch(scores, count)
    chosen = _greedy_spread_numpy(scores.detach().to("cpu", torch.float64).numpy(), count)
    return torch.from_numpy(chosen).to(scores.device)


def _greedy_spread_numpy(scores: np.ndarray, count: int) -> np.ndarray:
    n, f = scores.shape
    idx = np.arange(f)
    chosen = np.zeros((n, f), dtype=bool)
    chosen[:, 0] = chosen[:, -1] = True
    dist = np.broadcast_to(np.minimum(idx, f - 1 - idx).astype(np.float64), (n, f))
    spacing = f / count
    rows = np.arange(n)
    for _ in range(count - 2):
        effective = scores * np.minimum(dist / spacing, 1.0)
        effective[chosen] = -np.inf
        pick = effective.argmax(axis=1)
        chosen[rows, pick] = True
        dist = np.minimum(dist, np.abs(idx[None] - pick[:, None]))
    return chosen


def _greedy_spread_torch(scores: torch.Tensor, count: int) -> torch.Tensor:
    n, f = scores.shape
    scores = scores.double()
    idx = torch.arange(f, device=scores.device)
    chosen = torch.zeros(n, f, dtype=torch.bool, device=scores.device)
    chosen[:, 0] = chosen[:, -1] = True
    dist = torch.minimum(idx, f - 1 - idx).expand(n, f).clone().double()
    spacing = f / count
    rows = torch.arange(n, device=scores.device)
    for _ in range(count - 2):  # both ends are in already (a static count: exportable)
        effective = scores * (dist / spacing).clamp_max(1.0)
        effective = effective.masked_fill(chosen, float("-inf"))
        pick = effective.argmax(dim=1)
        chosen[rows, pick] = True
        dist = torch.minimum(dist, (idx[None] - pick[:, None]).abs().double())
    return chosen


def interpolate_frames(y: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Every frame of ``y`` ``(N, F, ...)`` linearly from its nearest ``chosen`` ``(N, F)``
    frames on either side (the two ends must be chosen)."""
    n, f = chosen.shape
    idx = torch.arange(f, device=y.device).expand(n, f)
    prev = torch.where(chosen, idx, torch.zeros_like(idx)).cummax(1).values
    nxt = torch.where(chosen, idx, torch.full_like(idx, f - 1)).flip(1).cummin(1).values.flip(1)
    tail = (1,) * (y.dim() - 2)
    w = ((idx - prev) / (nxt - prev).clamp_min(1)).to(y.dtype).reshape(n, f, *tail)

    def at(i: torch.Tensor) -> torch.Tensor:
        return torch.gather(y, 1, i.reshape(n, f, *tail).expand_as(y))

    return at(prev) * (1 - w) + at(nxt) * w


def keyframe_choice(keypoints_2d: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, F)`` mask of ``count`` frames chosen greedily by interpolation residual, and the
    residual of every frame when it was last scored (its essentialness)."""
    n, f = keypoints_2d.shape[:2]
    pose = (keypoints_2d - keypoints_2d[..., :1, :]).double()
    chosen = torch.zeros(n, f, dtype=torch.bool, device=pose.device)
    chosen[:, 0] = chosen[:, -1] = True
    rows = torch.arange(n, device=pose.device)
    residual = torch.zeros(n, f, dtype=pose.dtype, device=pose.device)
    for _ in range(count - 2):  # a static count: exportable
        residual = (interpolate_frames(pose, chosen) - pose).norm(dim=-1).mean(-1)
        chosen[rows, residual.masked_fill(chosen, -1.0).argmax(dim=1)] = True
    return chosen, residual.to(keypoints_2d.dtype)


def select_frames(
    keypoints_2d: torch.Tensor,
    count: int,
    scoring: str = "motion_graph",
    threshold: float = 0.5,
    radius: int = 4,
) -> FramePlan:
    """Choose ``count`` frames of each window ``(N, F, J, 2)``; see the module docstring."""
    n, f = keypoints_2d.shape[:2]
    if not 2 <= count <= f:
        raise ValueError(f"cannot keep {count} of {f} frames (need 2 <= count <= frames)")
    idx = torch.arange(f, device=keypoints_2d.device)
    if scoring == "uniform":
        scores = torch.ones(n, f, dtype=keypoints_2d.dtype, device=keypoints_2d.device)
        picks = torch.linspace(0, f - 1, count, device=keypoints_2d.device).round().long()
        chosen = torch.zeros(n, f, dtype=torch.bool, device=keypoints_2d.device)
        chosen[:, picks] = True
    elif scoring == "random":
        # Control: frames drawn at random (torch's global generator, so a seeded run repeats).
        scores = torch.rand(n, f, device=keypoints_2d.device).to(keypoints_2d.dtype)
        scores[:, 0] = scores[:, -1] = 2.0  # the ends, as every plan keeps them
        top = scores.topk(count, dim=1).indices
        chosen = torch.zeros(n, f, dtype=torch.bool, device=keypoints_2d.device)
        chosen.scatter_(1, top, True)
    elif scoring == "keyframe":
        with torch.no_grad():
            chosen, scores = keyframe_choice(keypoints_2d, count)
    elif scoring == "motion_graph":
        with torch.no_grad():
            scores = motion_graph_scores(keypoints_2d, threshold, radius)
            chosen = greedy_spread(scores, count)
    else:
        raise ValueError(f"unknown TCEP scoring {scoring!r}")
    # Sort kept (then pruned) frames into temporal order.
    order = torch.where(chosen, idx, idx + f).argsort(dim=1)
    return FramePlan(order[:, :count], order[:, count:], scores)
