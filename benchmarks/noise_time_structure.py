"""A real detector's 2D error over time against the fitted noise model's.

The noise model's sizes were fitted to MediaPipe's error on the Pose2Sim videos
(``benchmarks/pose2sim_noise.py``); its time structure is white jitter, a boxcar-smoothed
drift and one-frame outliers. A 2D median over five frames halved the 3D jitter under that
noise but did not help on the real video (benchmarks/RESULTS.md, section 4), which suggests
the real error is less white. This measures it on the same four views: the error's
autocorrelation at lags given in milliseconds, how often an outlier frame follows another,
and what a running median of about 100 ms does to each; then fits the model's time structure
(``jitter_frames``, ``outlier_frames``, ``drift_frames``) to the real error. The synthetic
noise is drawn on the same reprojected trajectories, at the same frame rate and person size,
so only the noise differs.

    cd benchmarks && python noise_time_structure.py ../runs/pose2sim_mediapipe.npz \
        --config ../configs/cmu_wide_htp.yaml
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
from pose2sim_noise import CALIB, _person_scale, load_views, triangulate_views, view_errors

from htpose.config import load_config
from htpose.data.sequences import DetectorNoise
from htpose.data.temporal import median_filter_frames

LAGS_MS = (17, 33, 67, 133, 267)


def autocorrelation(e: np.ndarray, lag: int) -> float:
    """Pooled autocorrelation of ``(T, ...)`` series at ``lag`` frames (NaN-aware)."""
    e = e - np.nanmean(e, axis=0)
    a, b = e[: len(e) - lag], e[lag:]
    ok = np.isfinite(a) & np.isfinite(b)
    if not ok.any():
        return float("nan")
    return float((a[ok] * b[ok]).sum() / np.sqrt((a[ok] ** 2).sum() * (b[ok] ** 2).sum()))


def outlier_runs(e: np.ndarray) -> tuple[float, float]:
    """Share of joint-frames beyond 4 robust sigmas, and the share of those whose previous
    frame is one too. ``e``: ``(T, J, 2)``."""
    sigma = 1.4826 * np.nanmedian(np.abs(e))
    out = (np.abs(e) > 4 * sigma).any(-1)  # (T, J)
    follows = out[1:] & out[:-1]
    return float(out.mean()), float(follows.sum() / max(1, out[1:].sum()))


def describe(errors: list[np.ndarray], fps: float) -> list[float]:
    """The table's row for per-view errors ``(T, J, 2)`` at ``fps``."""
    acs = [
        np.nanmean([autocorrelation(e, max(1, round(ms * fps / 1000))) for e in errors])
        for ms in LAGS_MS
    ]
    share, follow = np.mean([outlier_runs(e) for e in errors], axis=0)
    return [*acs, 100 * share, 100 * follow]


def median_gain(errors: list[np.ndarray], fps: float) -> float:
    """Mean joint error after a running median of about 100 ms over the mean before, pooled
    over the series ``(T, J, 2)``: how much of the error a temporal median can remove, given
    its time structure (the motion itself is left out)."""
    window = max(3, 2 * round(0.05 * fps) + 1)
    before, after = [], []
    for e in errors:
        med = median_filter_frames(np.where(np.isfinite(e), e, 0.0), window)
        ok = np.isfinite(e).all(-1)
        before.append(np.linalg.norm(e[ok], axis=-1))
        after.append(np.linalg.norm(med[ok], axis=-1))
    return float(np.concatenate(after).mean() / np.concatenate(before).mean())


def at_rate(noise: DetectorNoise, fps: float) -> DetectorNoise:
    """The model's frame counts (at 50 Hz) for series at ``fps``: the same times."""
    frames = {k: max(1, round(getattr(noise, k) * fps / 50))
              for k in ("drift_frames", "jitter_frames", "outlier_frames")}  # fmt: skip
    return replace(noise, **frames)


def draw(noise: DetectorNoise, truth: np.ndarray, px: np.ndarray, draws: int, seed: int = 0):
    """Synthetic errors ``(T, J, 2)`` at reference size, ``draws`` per view."""
    rng = np.random.default_rng(seed)
    out = []
    for v in range(len(truth)):
        scale, t = _person_scale(px[v]), np.nan_to_num(truth[v])
        out += [(noise.apply(t, rng, scale) - t) / scale for _ in range(draws)]
    return out


def fit_time_structure(noise, truth, px, real, fps: float, draws: int = 5) -> DetectorNoise:
    """The (jitter_frames, outlier_frames, drift_frames) at 50 Hz whose autocorrelations and
    outlier-after-outlier share come closest to the real error's (least squares)."""
    target = np.array(describe(real, fps))
    keep = [*range(len(LAGS_MS)), len(LAGS_MS) + 1]  # the autocorrelations and the follow share
    target[-1] /= 100

    def cost(candidate: DetectorNoise) -> float:
        row = np.array(describe(draw(at_rate(candidate, fps), truth, px, draws), fps))
        row[-1] /= 100
        return float(np.nansum((row[keep] - target[keep]) ** 2))

    grid = [replace(noise, jitter_frames=a, outlier_frames=b, drift_frames=c)
            for a in range(1, 7) for b in range(1, 7) for c in (4, 8, 12, 16, 25)]  # fmt: skip
    return min(grid, key=cost)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("detections")
    ap.add_argument("--config", default="configs/cmu_wide_htp.yaml", help="its data.noise")
    ap.add_argument("--fps", type=float, default=60.0, help="the videos' frame rate")
    ap.add_argument("--draws", type=int, default=20, help="synthetic draws per view")
    args = ap.parse_args()
    noise = DetectorNoise(**vars(load_config(args.config).data.noise))
    cams, names, px, vis = load_views(args.detections, str(CALIB))
    tri = triangulate_views(cams, names, px, vis)
    truth = px - tri["errors"]  # the reprojection, where the view was used
    real = [view_errors(tri["errors"][v], px[v])[2] for v in range(len(names))]
    real = [e for e in real if e is not None]
    synth = draw(at_rate(noise, args.fps), truth, px, args.draws)
    best = fit_time_structure(noise, truth, px, real, args.fps)
    print(f"fitted at 50 Hz: jitter_frames {best.jitter_frames}, outlier_frames "
          f"{best.outlier_frames}, drift_frames {best.drift_frames}")  # fmt: skip
    structured = draw(at_rate(best, args.fps), truth, px, args.draws)
    lags = " | ".join(f"{ms} ms" for ms in LAGS_MS)
    print(f"| error | autocorrelation at {lags} | outliers % | outlier after outlier % "
          "| error left by a 117 ms median |")  # fmt: skip
    print("| --- " * (len(LAGS_MS) + 4) + "|")
    rows = (
        ("MediaPipe on Pose2Sim (real)", describe(real, args.fps), median_gain(real, args.fps)),
        ("fitted noise model (white)", describe(synth, args.fps), median_gain(synth, args.fps)),
        ("with the fitted time structure", describe(structured, args.fps),
         median_gain(structured, args.fps)),
    )  # fmt: skip
    for name, row, gain in rows:
        print(f"| {name} | " + " | ".join(f"{x:.2f}" for x in row) + f" | {gain:.2f}x |")


if __name__ == "__main__":
    main()
