"""Is a model's error scale or shape? Per val sequence: MPJPE, predicted / true size (mean
joint distance from the pelvis) and the mean angle between predicted and true torso axes.

    python benchmarks/scale_check.py CHECKPOINT [--split val] [--every 3]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from htpose.checkpoint import load_model
from htpose.data.camera import normalize_keypoints
from htpose.data.sources import load_sequences
from htpose.data.temporal import blend_windows, split_windows
from htpose.diffusion.ddim import DDIMSampler
from htpose.diffusion.pipeline import sample_hypotheses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--split", default="val")
    ap.add_argument("--every", type=int, default=3, help="every N-th sequence")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, cfg, _ = load_model(args.checkpoint)
    seqs = load_sequences(cfg.data.clips, cfg.data.camera_file, args.split, ["S9"], [0])
    sampler = DDIMSampler.from_config(cfg.diffusion, 1)
    frames = cfg.model.frames
    for s in seqs[:: args.every]:
        win, starts = split_windows(s.keypoints_2d.astype(np.float32), frames)
        cam = s.camera
        x = normalize_keypoints(torch.from_numpy(win), cam.width, cam.height,
                                cfg.data.normalization)  # fmt: skip
        pred = blend_windows(sample_hypotheses(model, sampler, x, 1, True)[:, 0].numpy(),
                             starts, len(s))  # fmt: skip
        gt = s.joints_3d
        scale = np.linalg.norm(pred, axis=-1).mean() / np.linalg.norm(gt, axis=-1).mean()
        up_p, up_g = pred[:, 8] - pred[:, 0], gt[:, 8] - gt[:, 0]
        cos = (up_p * up_g).sum(-1) / np.linalg.norm(up_p, axis=-1) / np.linalg.norm(up_g, axis=-1)
        angle = np.degrees(np.arccos(np.clip(cos, -1, 1))).mean()
        err = np.linalg.norm(pred - gt, axis=-1).mean() * 1000
        print(f"{s.name[:40]:40} MPJPE {err:6.1f} mm  scale {scale:.2f}  torso {angle:5.1f} deg")


if __name__ == "__main__":
    main()
