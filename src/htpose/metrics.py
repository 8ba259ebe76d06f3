"""Pose-error metrics and per-action reporting.

All errors are root-relative and returned in the input's unit per frame; tables are in mm.
- MPJPE (protocol 1): mean joint distance.
- P-MPJPE (protocol 2): MPJPE after a per-frame similarity Procrustes alignment (scale,
  rotation, translation; reflections excluded).
- MPJVE: mean joint distance of the first temporal differences (velocities).
- PCK / AUC (MPI-INF-3DHP): share of joints under 150 mm; mean PCK over 0, 5, ..., 150 mm.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch

PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = np.arange(0.0, 151.0, 5.0)


def _rel(x: torch.Tensor) -> torch.Tensor:
    return x - x[..., :1, :]


def joint_errors(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-joint root-relative distances ``(..., J)`` of poses ``(..., J, 3)``."""
    return (_rel(pred) - _rel(target)).norm(dim=-1)


def mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pose MPJPE ``(...)`` of ``(..., J, 3)``."""
    return joint_errors(pred, target).mean(dim=-1)


def procrustes_align(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Align each pose ``(..., J, 3)`` of ``pred`` to ``target`` by a similarity transform."""
    p, t = pred.double(), target.double()
    mu_p, mu_t = p.mean(dim=-2, keepdim=True), t.mean(dim=-2, keepdim=True)
    p0, t0 = p - mu_p, t - mu_t
    cov = p0.transpose(-1, -2) @ t0  # (..., 3, 3)
    u, s, vh = torch.linalg.svd(cov)
    # Flip the last singular direction where needed so the result is a proper rotation.
    d = torch.sign(torch.linalg.det(u @ vh))
    fix = torch.ones_like(s)
    fix[..., -1] = d
    rot = (u * fix[..., None, :]) @ vh
    scale = (s * fix).sum(dim=-1) / p0.pow(2).sum(dim=(-1, -2)).clamp_min(1e-12)
    aligned = scale[..., None, None] * (p0 @ rot) + mu_t
    return aligned.to(pred.dtype)


def p_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pose MPJPE after Procrustes alignment ``(...)``."""
    return (procrustes_align(pred, target) - target).norm(dim=-1).mean(dim=-1)


def mpjve(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-frame velocity error of sequences ``(..., T, J, 3)`` -> ``(..., T - 1)``."""
    vp = torch.diff(_rel(pred), dim=-3)
    vt = torch.diff(_rel(target), dim=-3)
    return (vp - vt).norm(dim=-1).mean(dim=-1)


def pck(errors_mm: np.ndarray, threshold: float = PCK_THRESHOLD_MM) -> float:
    """Percentage of joint errors ``(N, J)`` (mm) below ``threshold``."""
    return float((np.asarray(errors_mm) < threshold).mean() * 100.0)


def auc(errors_mm: np.ndarray) -> float:
    """Mean PCK over the thresholds 0, 5, ..., 150 mm, as a percentage."""
    return float(np.mean([pck(errors_mm, t) for t in AUC_THRESHOLDS_MM]))


@dataclass
class ErrorTable:
    """Accumulates per-frame errors (mm) by action and reports per-action and mean values.

    ``mean_over_actions`` is the Human3.6M protocol number (the unweighted mean of the
    per-action means); ``mean_over_frames`` weights every frame equally.
    """

    metrics: tuple[str, ...] = ("mpjpe_mm", "p_mpjpe_mm")
    values: dict[str, dict[str, list[np.ndarray]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )

    def add(self, action: str, **per_frame: np.ndarray) -> None:
        for name, arr in per_frame.items():
            self.values[name][action].append(np.asarray(arr, dtype=np.float64).reshape(-1))

    def actions(self) -> list[str]:
        return sorted(self.values[self.metrics[0]])

    def per_action(self, name: str) -> dict[str, float]:
        return {a: float(np.concatenate(v).mean()) for a, v in sorted(self.values[name].items())}

    def frames(self) -> int:
        return int(sum(len(x) for v in self.values[self.metrics[0]].values() for x in v))

    def mean_over_actions(self, name: str) -> float:
        per = self.per_action(name)
        return float(np.mean(list(per.values()))) if per else float("nan")

    def mean_over_frames(self, name: str) -> float:
        allv = [x for v in self.values[name].values() for x in v]
        return float(np.concatenate(allv).mean()) if allv else float("nan")

    def summary(self) -> dict:
        """The machine-readable result: means, frames and per-action values."""
        out: dict = {name: self.mean_over_actions(name) for name in self.metrics}
        out.update({f"{name}_all_frames": self.mean_over_frames(name) for name in self.metrics})
        out["frames"] = self.frames()
        out["per_action"] = {
            a: {name: self.per_action(name)[a] for name in self.metrics if a in self.values[name]}
            for a in self.actions()
        }
        return out

    def format(self, title: str = "", rows: str = "action") -> str:
        """A plain-text table: one row per action, then the means. ``rows`` names what the
        rows are (the novel-camera protocol groups by ``"camera kind"``)."""
        names = list(self.metrics)
        width = max([len(a) for a in self.actions()] + [22])
        lines = [title] if title else []
        lines.append(f"{rows:<{width}} " + " ".join(f"{n:>12}" for n in names))
        for a in self.actions():
            lines.append(
                f"{a:<{width}} " + " ".join(f"{self.per_action(n)[a]:12.1f}" for n in names)
            )
        lines.append(
            f"{f'mean over {rows}s':<{width}} "
            + " ".join(f"{self.mean_over_actions(n):12.1f}" for n in names)
        )
        lines.append(
            f"{'mean over frames':<{width}} "
            + " ".join(f"{self.mean_over_frames(n):12.1f}" for n in names)
        )
        return "\n".join(lines)
