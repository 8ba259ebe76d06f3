"""Turning H hypotheses ``(B, H, F, J, 3)`` into one pose sequence ``(B, F, J, 3)``.

- ``mean``: the average hypothesis.
- ``pbest``: the hypothesis with the lowest MPJPE over the whole window (oracle, uses the
  ground truth; an upper bound for reporting only). D3DP picks one per evaluation batch;
  here one per window.
- ``jbest``: per frame and joint, the hypothesis closest to the ground truth (oracle).
- ``jpma``: per frame and joint, the hypothesis whose reprojection lands closest to the
  input 2D. Needs the camera intrinsics and the root position; when the root is unknown
  (a user's own video) it is solved by least squares from the 2D and the mean hypothesis
  (:func:`estimate_root`).
"""

from __future__ import annotations

import torch

from htpose.data.camera import pixels_to_rays, project

AGGREGATIONS = ("mean", "jpma", "pbest", "jbest")
ORACLE_AGGREGATIONS = ("pbest", "jbest")


def aggregate_mean(hyps: torch.Tensor) -> torch.Tensor:
    return hyps.mean(dim=1)


def aggregate_pbest(hyps: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per window, the single hypothesis with the lowest mean joint error to ``target``."""
    err = (hyps - target[:, None]).norm(dim=-1).mean(dim=(2, 3))  # (B, H)
    best = err.argmin(dim=1)
    return hyps[torch.arange(hyps.shape[0]), best]


def _pick_per_joint(hyps: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
    """``cost`` ``(B, H, F, J)``: per (B, F, J) keep the hypothesis of least cost."""
    best = cost.argmin(dim=1, keepdim=True)  # (B, 1, F, J)
    idx = best[..., None].expand(-1, -1, -1, -1, 3)
    return hyps.gather(1, idx).squeeze(1)


def aggregate_jbest(hyps: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per frame and joint, the hypothesis closest to ``target`` ``(B, F, J, 3)``."""
    return _pick_per_joint(hyps, (hyps - target[:, None]).norm(dim=-1))


def estimate_root(
    pose: torch.Tensor,
    keypoints_px: torch.Tensor,
    intrinsics: torch.Tensor,
    weights: torch.Tensor | None = None,
    distortion: str = "brown_conrady",
) -> torch.Tensor:
    """Least-squares camera-frame root position ``(..., 3)``.

    ``pose`` ``(..., J, 3)`` root-relative; ``keypoints_px`` ``(..., J, 2)``; ``intrinsics``
    broadcastable to ``(..., 9)``. The 2D is undistorted to rays ``(a, b)``; a pinhole camera
    then gives two linear equations per joint in the root ``T``:
    ``T_x - a T_z = a Z - X`` and ``T_y - b T_z = b Z - Y``.
    """
    rays = pixels_to_rays(keypoints_px.double(), intrinsics.double()[..., None, :], distortion)
    p = pose.double()
    a, b = rays[..., 0], rays[..., 1]
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    rows_x = torch.stack([one, zero, -a], dim=-1)
    rows_y = torch.stack([zero, one, -b], dim=-1)
    mat = torch.cat([rows_x, rows_y], dim=-2)  # (..., 2J, 3)
    rhs = torch.cat([a * p[..., 2] - p[..., 0], b * p[..., 2] - p[..., 1]], dim=-1)
    if weights is not None:
        w = torch.cat([weights, weights], dim=-1).double().sqrt()
        mat, rhs = mat * w[..., None], rhs * w
    sol = torch.linalg.lstsq(mat, rhs[..., None]).solution[..., 0]
    return sol.to(pose.dtype)


def aggregate_jpma(
    hyps: torch.Tensor,
    keypoints_px: torch.Tensor,
    intrinsics: torch.Tensor,
    root: torch.Tensor | None = None,
    distortion: str = "brown_conrady",
) -> torch.Tensor:
    """Joint-wise reprojection-based choice.

    ``keypoints_px`` ``(B, F, J, 2)`` the (un-flipped) input 2D in pixels; ``intrinsics``
    ``(B, 9)``; ``root`` ``(B, F, 3)`` camera-frame root, or None to estimate it.
    """
    if root is None:
        root = estimate_root(
            hyps.mean(dim=1), keypoints_px, intrinsics[:, None], distortion=distortion
        )
    absolute = hyps + root[:, None, :, None, :]
    reproj = project(absolute, intrinsics[:, None, None, None, :].to(hyps), distortion)
    cost = (reproj - keypoints_px[:, None]).norm(dim=-1)
    return _pick_per_joint(hyps, cost)


def aggregate(
    method: str,
    hyps: torch.Tensor,
    target: torch.Tensor | None = None,
    keypoints_px: torch.Tensor | None = None,
    intrinsics: torch.Tensor | None = None,
    root: torch.Tensor | None = None,
    distortion: str = "brown_conrady",
) -> torch.Tensor:
    """Dispatch to one aggregation by name (see the module docstring)."""
    if method == "mean":
        return aggregate_mean(hyps)
    if method in ORACLE_AGGREGATIONS:
        if target is None:
            raise ValueError(f"{method} needs the ground truth")
        return aggregate_pbest(hyps, target) if method == "pbest" else aggregate_jbest(hyps, target)
    if method == "jpma":
        if keypoints_px is None or intrinsics is None:
            raise ValueError("jpma needs the input 2D in pixels and the camera intrinsics")
        return aggregate_jpma(hyps, keypoints_px, intrinsics, root, distortion)
    raise ValueError(f"unknown aggregation {method!r}; choose from {', '.join(AGGREGATIONS)}")
