"""Calibrated uncertainty: what the hypotheses' spread means, measured and fitted on ``val``.

The raw spread of the H hypotheses around their mean (per joint and frame, metres) is far
smaller than the actual error of the mean on data unlike the training data, so it cannot be
read as an error bar as it is. Calibration fits, per joint, the factor ``c_j`` that turns the
spread into the radius within which the true joint lies with probability ``level`` (0.68 by
default, a "one sigma" reading): ``c_j`` is the ``level`` quantile of error / spread over a
validation set. The factors travel in the checkpoint's header (``meta["uncertainty"]``), and
``htpose lift`` then reports ``uncertainty = c_j x spread``.

Coverage (how often the error is below k times the reported radius, for k = 1, 2, 3) says
whether a radius means what it claims: for a calibrated 68 % radius, coverage at k = 1 is
0.68 on the data it was fitted on; on other data it shows how far the claim carries.
"""

from __future__ import annotations

import numpy as np

DEFAULT_LEVEL = 0.68
COVERAGE_K = (1.0, 2.0, 3.0)
MIN_SPREAD_M = 1e-4  # below 0.1 mm a spread carries no information; avoid dividing by it


def coverage(
    errors: np.ndarray, radius: np.ndarray, ks: tuple[float, ...] = COVERAGE_K
) -> dict[str, float]:
    """Share of joints ``(N, J)`` whose error is at most k x ``radius`` ``(N, J)``, per k."""
    r = np.maximum(radius, MIN_SPREAD_M)
    return {f"within_{k:g}x": float((errors <= k * r).mean()) for k in ks}


def fit_scale(errors: np.ndarray, spread: np.ndarray, level: float = DEFAULT_LEVEL) -> np.ndarray:
    """Per-joint factors ``(J,)``: the ``level`` quantile of error / spread."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    ratio = errors / np.maximum(spread, MIN_SPREAD_M)
    return np.quantile(ratio, level, axis=0)


def calibration_report(
    errors: np.ndarray, spread: np.ndarray, scale: np.ndarray | None
) -> dict[str, object]:
    """Coverage of the raw spread and, when ``scale`` is given, of the calibrated radius."""
    report: dict[str, object] = {
        "raw_spread_mm": float(1000 * spread.mean()),
        "error_mm": float(1000 * errors.mean()),
        "raw": coverage(errors, spread),
    }
    if scale is not None:
        radius = spread * scale
        report["calibrated_radius_mm"] = float(1000 * radius.mean())
        report["calibrated"] = coverage(errors, radius)
    return report
