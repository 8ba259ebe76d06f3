"""Single-view lifting on real video, judged against a four-view triangulation.

The Pose2Sim trial (``../shared/data/pose2sim``: four calibrated phone cameras, 100 frames at
60 fps) has no 3D ground truth, so a reference is made: MediaPipe's 2D of the four views,
triangulated (``pose2sim_noise.triangulate_views``: views that follow another person or swap
left and right are voted out per frame). Each camera's own 2D is then lifted alone by each
checkpoint (what ``htpose video`` does: default focal, the camera's image size, 60 fps) and
compared with the reference in that camera's frame, on the frames where that camera took part
in the triangulation and on the joints whose definitions agree between MediaPipe landmarks
and the training skeleton: shoulders, elbows, wrists, hips, knees, ankles (the hip, head and
spine joints are built differently). MPJPE after aligning the pelvis (mid-hips in both), and
P-MPJPE (similarity-aligned). The trivial baseline ``flat``: the 2D put back at the
reference's own pelvis depth (a flat person facing the camera, with the true scale).

    python benchmarks/pose2sim_detect.py ../shared/data/pose2sim runs/pose2sim_mediapipe.npz
    python benchmarks/pose2sim_lift.py runs/pose2sim_mediapipe.npz \\
        --checkpoint bundled --checkpoint NEW=runs/cmu_wide_htp/best.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pose2sim_noise import load_views, triangulate_views  # noqa: E402

from htpose.data.camera import world_to_camera  # noqa: E402
from htpose.data.keypoints import Keypoints2D, fill_missing  # noqa: E402
from htpose.lift import Lifter  # noqa: E402
from htpose.metrics import p_mpjpe  # noqa: E402
from htpose.skeleton import FLIP_PERM, JOINT_NAMES  # noqa: E402

EVAL_JOINTS = [JOINT_NAMES.index(n) for n in (
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
    "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
)]  # fmt: skip
FPS = 60.0


def _errors(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float, float, float]:
    """Pelvis-aligned MPJPE and P-MPJPE in mm over frames ``(T, 17, 3)`` on EVAL_JOINTS,
    the body's size against the reference's (median over frames of the RMS distance of
    those joints from their centroid), and N-MPJPE (pelvis-aligned after the least-squares
    scale per frame: the pose error with the size taken out, rotation left in)."""
    p = pred - pred[:, :1]
    r = ref - ref[:, :1]
    p, r = p[:, EVAL_JOINTS], r[:, EVAL_JOINTS]
    mpjpe = np.linalg.norm(p - r, axis=-1).mean()
    pa = p_mpjpe(torch.from_numpy(p).double(), torch.from_numpy(r).double()).mean()

    def size(x: np.ndarray) -> np.ndarray:
        return np.sqrt(((x - x.mean(1, keepdims=True)) ** 2).sum(-1).mean(-1))

    s = (p * r).sum((1, 2), keepdims=True) / (p * p).sum((1, 2), keepdims=True)
    n_mpjpe = np.linalg.norm(s * p - r, axis=-1).mean()
    ratio = float(np.median(size(p) / size(r)))
    return 1000 * float(mpjpe), 1000 * float(pa), ratio, 1000 * float(n_mpjpe)


def _flat(px: np.ndarray, ref_cam: np.ndarray, cam) -> np.ndarray:
    """The 2D back-projected at the reference pelvis depth: ``(T, 17, 3)``."""
    fx, fy = cam.focal
    cx, cy = cam.center
    z = ref_cam[:, :1, 2:3]
    x = (px[..., :1] - cx) / fx * z
    y = (px[..., 1:2] - cy) / fy * z
    return np.concatenate([x, y, np.broadcast_to(z, x.shape)], -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("detections")
    ap.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH|bundled")
    ap.add_argument("--hypotheses", type=int, default=20)
    ap.add_argument("--steps", type=int, help="DDIM steps K (default: each model's own)")
    ap.add_argument("--json")
    args = ap.parse_args()
    cams, names, px, vis = load_views(args.detections)
    tri = triangulate_views(cams, names, px, vis)
    models = {}
    for spec in args.checkpoint or ["bundled"]:
        name, _, path = spec.rpartition("=") if "=" in spec else (spec, "", spec)
        models[name] = Lifter.from_pretrained(None if path == "bundled" else path)
    rows = []
    for v, n in enumerate(names):
        cam = cams[n]
        frames = tri["used"][:, v] & np.isfinite(tri["points"][:, EVAL_JOINTS + [0]]).all((1, 2))
        # The reference in this camera's frame and labels (swapped where this view was).
        ref = world_to_camera(torch.from_numpy(tri["points"]), cam).numpy()
        ref = np.where(tri["swaps"][:, v, None, None], ref[:, FLIP_PERM], ref)
        row = {"camera": n, "frames": int(frames.sum())}
        filled, _ = fill_missing(px[v], vis[v])  # as the lifter sees it
        row["flat"] = _errors(_flat(filled, ref, cam)[frames], ref[frames])
        kp = Keypoints2D(px[v], vis[v], FPS, cam.width, cam.height, "h36m17")
        for name, lifter in models.items():
            res = lifter(kp, fps=FPS, hypotheses=args.hypotheses, steps=args.steps)
            row[name] = _errors(res.joints_3d[frames], ref[frames])
        rows.append(row)
    cols = ["flat", *models]
    print(f"Single-view lifting vs four-view triangulation, H={args.hypotheses}, "
          f"K={args.steps or 'per model (sampling_steps)'}; "
          "MPJPE / P-MPJPE mm on the 12 limb joints, x size against the reference, "
          "N: N-MPJPE (size taken out)")  # fmt: skip

    def cell(e) -> str:
        return f"{e[0]:8.1f} / {e[1]:6.1f} x{e[2]:5.2f} N{e[3]:6.1f} "

    print(f"{'camera':8} {'frames':>6} " + " ".join(f"{c:>34}" for c in cols))
    for r in rows:
        print(f"{r['camera']:8} {r['frames']:6d} " + " ".join(cell(r[c]) for c in cols))
    # Each view counts once in "mean" (the figure earlier tables report); the views have very
    # different frame counts, so "per frame" weights each by its frames as well.
    weights = [r["frames"] for r in rows]
    mean = {c: np.mean([r[c] for r in rows], axis=0).round(2).tolist() for c in cols}
    per_frame = {
        c: np.average([r[c] for r in rows], axis=0, weights=weights).round(2).tolist() for c in cols
    }
    print(f"{'mean':8} {'':6} " + " ".join(cell(mean[c]) for c in cols))
    print(f"{'perframe':8} {sum(weights):6d} " + " ".join(cell(per_frame[c]) for c in cols))
    if args.json:
        out = {"rows": rows, "mean": mean, "per_frame": per_frame}
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
