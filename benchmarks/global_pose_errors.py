"""How much of a lifter's error is the whole body's orientation and size, per action.

MPJPE mixes three things: a wrong pose, a body turned the wrong way, and a body of the
wrong size. For each checkpoint and action this splits them per frame, on the mean of H
hypotheses (the poses ``htpose evaluate`` scores, GT 2D):

- ``rot``: the angle of the rotation that best aligns the prediction to the truth
  (Procrustes, about the joints' centroid), degrees, median over frames;
- ``scale``: the prediction's size over the truth's (RMS distance of the joints from their
  centroid), median; below 1 the lifter hedges towards a smaller, average pose;
- ``torso``: the angle between predicted and true pelvis-to-thorax vectors, median, degrees.

    python benchmarks/global_pose_errors.py --checkpoint A=runs/a/model.safetensors \\
        --checkpoint B=... --tcn peer=runs/study/tcn_s0.safetensors --split val --hypotheses 5

``--tcn`` takes a checkpoint of the peer baseline (``benchmarks/peer_tcn.py``).
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch
from peer_tcn import load_tcn, predict_tcn  # beside this script

from htpose.checkpoint import load_model
from htpose.data.sources import load_sequences
from htpose.evaluate import predict_sequences
from htpose.metrics import p_mpjpe
from htpose.skeleton import JOINT_NAMES

THORAX = JOINT_NAMES.index("thorax")


def frame_errors(pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    """Per frame of two ``(T, J, 3)`` pelvis-relative sequences: MPJPE and P-MPJPE (mm),
    Procrustes rotation angle (deg), scale ratio, torso angle (deg)."""
    p = pred - pred.mean(1, keepdims=True)
    t = true - true.mean(1, keepdims=True)
    u, _, vt = np.linalg.svd(np.einsum("tji,tjk->tik", t, p))
    d = np.sign(np.linalg.det(u @ vt))
    u[:, :, -1] *= d[:, None]  # a rotation, not a reflection
    rot = u @ vt  # maps the prediction's frame onto the truth's
    angle = np.degrees(np.arccos(np.clip((np.trace(rot, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    size_p = np.sqrt((p**2).sum(-1).mean(-1))
    size_t = np.sqrt((t**2).sum(-1).mean(-1))
    a, b = pred[:, THORAX] - pred[:, 0], true[:, THORAX] - true[:, 0]
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12)
    return {
        "mpjpe": 1000 * np.linalg.norm(pred - true, axis=-1).mean(-1),
        "p_mpjpe": 1000 * p_mpjpe(torch.from_numpy(pred), torch.from_numpy(true)).numpy(),
        "rot": angle,
        "scale": size_p / size_t,
        "torso": np.degrees(np.arccos(np.clip(cos, -1, 1))),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--tcn", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--split", default="val")
    ap.add_argument("--subjects", default="S9")
    ap.add_argument("--views", default="0")
    ap.add_argument("--hypotheses", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.split}, {args.subjects} view {args.views}, mean of H={args.hypotheses}, "
          "GT 2D; medians over frames except MPJPE / P-MPJPE (means)\n")  # fmt: skip
    print("| model | action | MPJPE | P-MPJPE | rot (deg) | scale | torso (deg) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    views = [int(v) for v in args.views.split(",")]
    for item in args.checkpoint:
        name, _, path = item.rpartition("=")
        model, cfg, _ = load_model(path)
        seqs = load_sequences(
            cfg.data.clips, cfg.data.camera_file, args.split, args.subjects.split(","), views
        )
        _print_rows(name or path, seqs, predict_sequences(model, cfg, seqs, args.hypotheses))
    for item in args.tcn:
        name, _, path = item.rpartition("=")
        model, data = load_tcn(path)
        seqs = load_sequences(
            data["clips"], data["camera_file"], args.split, args.subjects.split(","), views
        )
        preds = [predict_tcn(model, seq, data["normalization"]) for seq in seqs]
        _print_rows(name or path, seqs, preds)


def _print_rows(name: str, seqs, preds: list[np.ndarray]) -> None:
    """One table row per action and one for all frames."""
    by_action: dict[str, list[dict]] = defaultdict(list)
    for pred, seq in zip(preds, seqs):
        true = seq.joints_3d - seq.joints_3d[:, :1]
        by_action[seq.action].append(frame_errors(pred - pred[:, :1], true))
    by_action["all"] = [e for errs in list(by_action.values()) for e in errs]
    for action, errs in by_action.items():
        cat = {k: np.concatenate([e[k] for e in errs]) for k in errs[0]}
        print(
            f"| {name} | {action} | {cat['mpjpe'].mean():.1f} | {cat['p_mpjpe'].mean():.1f} | "
            f"{np.median(cat['rot']):.1f} | {np.median(cat['scale']):.3f} | "
            f"{np.median(cat['torso']):.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
