"""A real detector's 2D error, measured on four calibrated real videos; the noise model fitted.

Input: MediaPipe Pose detections of the Pose2Sim videos (``benchmarks/pose2sim_detect.py``)
and their Qualisys calibration. Per frame the detections of the four views are mapped to
Human3.6M-17, left/right swaps are voted out (each view's labels are kept or swapped,
whichever makes the four views agree best), and every joint seen in two or more views is
triangulated (linear DLT on undistorted rays). Reprojecting the triangulation gives each
view's 2D error per joint and frame. A constant offset per camera (a calibration or cropping
mismatch, not detector noise) is removed, errors are scaled to a person of the reference
size (``htpose.data.sequences.person_scale``), and the detector-noise model of
``data.noise`` is fitted: ``jitter_px`` (frame-to-frame part), ``drift_px`` and
``drift_frames`` (slow part and its correlation time at 50 Hz), ``outlier_prob`` and
``outlier_px`` (errors beyond 4 robust sigmas). The triangulation absorbs part of each
view's error (four views, least squares), so the measured error is a lower bound.

    python benchmarks/pose2sim_noise.py runs/pose2sim_mediapipe.npz --json runs/noise_fit.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch

from htpose.data.camera import pixels_to_rays, project, world_to_camera
from htpose.data.keypoints import to_h36m
from htpose.data.qualisys import read_qualisys
from htpose.data.sequences import REFERENCE_SPREAD_PX
from htpose.skeleton import FLIP_PERM, JOINT_NAMES

REPO = Path(__file__).resolve().parents[1]
CALIB = REPO.parent / "shared/data/pose2sim/Calib.qca.txt"


def triangulate(rays: np.ndarray, w2c: np.ndarray, centres: np.ndarray, ok: np.ndarray):
    """DLT for one point: rays ``(V, 2)`` (undistorted x/z, y/z), rotations ``(V, 3, 3)``,
    centres ``(V, 3)``, views used ``(V,)``. Returns ``(3,)`` or NaN."""
    rows = []
    for v in np.flatnonzero(ok):
        p = np.hstack([w2c[v], -w2c[v] @ centres[v][:, None]])  # (3, 4)
        x, y = rays[v]
        rows += [x * p[2] - p[0], y * p[2] - p[1]]
    if len(rows) < 4:
        return np.full(3, np.nan)
    _, _, vt = np.linalg.svd(np.array(rows))
    h = vt[-1]
    return h[:3] / h[3]


def load_views(detections: str, calibration: str = str(CALIB)):
    """Detections of the cameras the calibration knows, in Human3.6M-17 at calibrated size:
    ``(cams, names, px (V, T, 17, 2), vis (V, T, 17))``."""
    cams = read_qualisys(calibration)
    det = np.load(detections)
    names = sorted(c for c in cams if c in det.files)
    px, vis = [], []
    for n in names:
        pts = np.nan_to_num(det[n].copy())
        w_video = float(det[f"{n}_size"][0])
        pts[..., 0] *= cams[n].width / w_video  # video resized from the calibrated width
        xy, sc = to_h36m(pts, "mediapipe33")
        px.append(xy)
        vis.append(sc)
    return cams, names, np.array(px), np.array(vis)


def triangulate_views(
    cams, names, px: np.ndarray, vis: np.ndarray, min_visibility: float = 0.5,
    drop_penalty: float = 15.0,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Per frame, the triangulation that best explains the views: ``points`` ``(T, 17, 3)``
    world (labels of the first view used), ``errors`` ``(V, T, 17, 2)`` reprojection,
    ``swaps`` ``(T, V)`` whose left/right labels were swapped, ``used`` ``(T, V)``."""
    w2c = np.array([cams[n].rotation().numpy().T for n in names])
    centres = np.array([cams[n].position for n in names])
    intr = [cams[n].intrinsics() for n in names]
    views, frames = px.shape[:2]
    rays = np.array([
        pixels_to_rays(torch.from_numpy(np.nan_to_num(px[v])), intr[v]).numpy()
        for v in range(views)
    ])  # fmt: skip

    def solve(
        t: int, swaps: tuple[int, ...], used: tuple[int, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        pts3 = np.full((17, 3), np.nan)
        for j in range(17):
            src = [FLIP_PERM[j] if s else j for s in swaps]
            ok = np.array([v in used and vis[v, t, src[v]] >= min_visibility for v in range(views)])
            r = np.array([rays[v, t, src[v]] for v in range(views)])
            pts3[j] = triangulate(r, w2c, centres, ok)
        err = []
        for v in range(views):
            cam_pts = world_to_camera(torch.from_numpy(pts3), cams[names[v]])
            rep = project(cam_pts, intr[v]).numpy()
            src = [FLIP_PERM[j] if swaps[v] else j for j in range(17)]
            e = rep - px[v, t, src]
            e[vis[v, t, src] < min_visibility] = np.nan
            err.append(e)
        return pts3, np.array(err)

    # Per frame: which views see the same person (a view may follow someone else) and
    # whose left/right labels to swap. Cost: the median reprojection error of the views used,
    # plus a penalty for each view left out, so views are dropped only when they disagree.
    out = {
        "points": np.full((frames, 17, 3), np.nan),
        "errors": np.full((views, frames, 17, 2), np.nan),
        "swaps": np.zeros((frames, views), bool),
        "used": np.zeros((frames, views), bool),
    }
    subsets = [c for k in range(views, 1, -1) for c in itertools.combinations(range(views), k)]
    for t in range(frames):
        best = None
        for used in subsets:
            for swaps in itertools.product((0, 1), repeat=views):
                if swaps[used[0]] or any(swaps[v] for v in range(views) if v not in used):
                    continue  # the first view used fixes the labels
                pts3, err = solve(t, swaps, used)
                cost = np.nanmedian(np.linalg.norm(err[list(used)], axis=-1))
                cost += drop_penalty * (views - len(used))
                if np.isfinite(cost) and (best is None or cost < best[0]):
                    best = (cost, swaps, err, used, pts3)
        if best is None:
            continue
        _, swaps, err, used, pts3 = best
        err[[v for v in range(views) if v not in used]] = np.nan
        out["points"][t] = pts3
        out["errors"][:, t] = err
        out["swaps"][t] = swaps
        out["used"][t] = [v in used for v in range(views)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("detections")
    ap.add_argument("--calibration", default=str(CALIB))
    ap.add_argument("--min-visibility", type=float, default=0.5)
    ap.add_argument(
        "--drop-penalty", type=float, default=15.0, help="px of error a left-out view costs"
    )
    ap.add_argument("--json")
    args = ap.parse_args()
    cams, names, px, vis = load_views(args.detections, args.calibration)
    tri = triangulate_views(cams, names, px, vis, args.min_visibility, args.drop_penalty)
    report = fit(tri["errors"], px, vis >= args.min_visibility, names)
    report["frames_with_a_view_swapped"] = dict(zip(names, tri["swaps"].sum(0).tolist()))
    report["frames_with_a_view_left_out"] = dict(zip(names, (~tri["used"]).sum(0).tolist()))
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


def _person_scale(px: np.ndarray) -> float:
    """:func:`htpose.data.sequences.person_scale` over the joints each frame has."""
    with np.errstate(all="ignore"):
        centred = px - np.nanmean(px, axis=1, keepdims=True)
        spread = np.sqrt(np.nanmean((centred**2).sum(-1), axis=1))
    return float(np.nanmedian(spread)) / REFERENCE_SPREAD_PX


def view_errors(e: np.ndarray, px: np.ndarray) -> tuple[np.ndarray, float, np.ndarray | None]:
    """One view's errors ``(T, 17, 2)`` less their constant offset (a calibration or cropping
    mismatch, not detector noise), in pixels of the reference person size: ``(offset, scale,
    scaled)``, ``scaled`` None where the person's size cannot be measured."""
    offset = np.nanmedian(e.reshape(-1, 2), axis=0)
    scale = _person_scale(px)
    ok = np.isfinite(scale) and scale > 0
    return offset, scale, (e - offset) / scale if ok else None


def fit(errors: np.ndarray, px: np.ndarray, seen: np.ndarray, names: list[str]) -> dict:
    """The noise model's parameters from reprojection errors ``(V, T, 17, 2)``."""
    views = len(names)
    per_camera, scaled = {}, []
    for v in range(views):
        offset, scale, view_scaled = view_errors(errors[v], px[v])
        per_camera[names[v]] = {
            "median_error_px": float(np.nanmedian(np.linalg.norm(errors[v], axis=-1))),
            "constant_offset_px": np.round(offset, 2).tolist(),
            "person_scale": round(scale, 3),
        }
        if view_scaled is not None:
            scaled.append(view_scaled)
    e = np.concatenate(scaled, axis=1)  # (T_all, 17, 2), reference-size pixels
    # Frame-to-frame part vs slow part (5-frame moving average at 60 fps, 83 ms).
    kernel = np.ones(5) / 5
    smooth = np.apply_along_axis(
        lambda s: np.convolve(np.nan_to_num(s), kernel, "same"), 0, e
    )  # fmt: skip
    fast = e - smooth
    sigma = 1.4826 * np.nanmedian(np.abs(e))
    outlier = np.abs(e) > 4 * sigma
    auto = []
    for j in range(17):
        for c in range(2):
            s = smooth[:, j, c] - np.nanmean(smooth[:, j, c])
            if np.nanstd(s) == 0:
                continue
            ac = [np.nanmean(s[: len(s) - k] * s[k:]) / np.nanvar(s) for k in range(1, 60)]
            below = [k for k, a in enumerate(ac, 1) if a < np.exp(-1)]
            auto.append(below[0] if below else 60)
    per_joint = {
        JOINT_NAMES[j]: round(float(np.nanmedian(np.linalg.norm(e[:, j], axis=-1))), 2)
        for j in range(17)
    }
    return {
        "per_camera": per_camera,
        "median_error_per_joint_px_reference_size": per_joint,
        "fitted_noise": {
            "jitter_px": round(float(np.nanstd(fast[~outlier[..., :1].repeat(2, -1)])), 2),
            "drift_px": round(float(np.nanstd(smooth[~outlier])), 2),
            "drift_frames": int(round(np.median(auto) * 50 / 60)) if auto else 25,
            "outlier_prob": round(float(outlier.any(-1).mean()), 4),
            "outlier_px": round(
                float(np.nanmedian(np.abs(e[outlier]))) if outlier.any() else 0.0, 1
            ),
        },
    }


if __name__ == "__main__":
    main()
