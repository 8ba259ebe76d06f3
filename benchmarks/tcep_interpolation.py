"""How much can any choice of frames gain? The interpolation bound of TCEP.

HTP's recovery gives every pruned frame the update of its kept neighbours, linear in time,
before a cross-attention refines it. So a frame choice can only help by leaving less to
recover: this measures, on ground-truth 3D poses (pelvis-relative, 50 Hz, 81-frame windows),
the error of linearly interpolating the pruned frames from the kept ones, for each choice:
evenly spaced frames, random frames, TCEP's motion graph (from the 2D, as the model does),
TCEP's keyframe choice (greedily the frame worst explained by interpolation, from the 2D),
and the same greedy choice made on the 3D itself (an oracle no model has). The
oracle's margin over evenly spaced frames bounds what any frame choice can gain.

    python benchmarks/tcep_interpolation.py --split val
    python benchmarks/tcep_interpolation.py --split test_wide
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch

from htpose.data.camera import normalize_keypoints
from htpose.data.sources import load_sequences
from htpose.model.pruning.tcep import interpolate_frames, keyframe_choice, select_frames

CHOICES = ("uniform", "random", "motion_graph", "keyframe", "keyframe_3d_oracle")


def windows(split: str, frames: int):
    """Normalised 2D ``(N, F, J, 2)``, 3D ``(N, F, J, 3)`` and the action of each window."""
    seqs = load_sequences(
        "../shared/data/cmu/cmu_h36m17.npz", "../shared/data/h36m_cameras.json", split, ["S9"], [0]
    )
    x2, x3, actions = [], [], []
    for s in seqs:
        for start in range(0, len(s) - frames + 1, frames):
            sl = slice(start, start + frames)
            px = torch.from_numpy(s.keypoints_2d[sl])
            x2.append(normalize_keypoints(px, s.camera.width, s.camera.height, "person"))
            x3.append(torch.from_numpy(s.joints_3d[sl]))
            actions.append(s.action)
    return torch.stack(x2).float(), torch.stack(x3).double(), actions


def choose(choice: str, x2: torch.Tensor, x3: torch.Tensor, count: int) -> torch.Tensor:
    if choice == "keyframe_3d_oracle":
        return keyframe_choice(x3, count)[0]
    return select_frames(x2, count, choice).mask


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="val")
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--keep", default="0.25,0.33,0.5")
    args = ap.parse_args()
    torch.manual_seed(0)
    x2, x3, actions = windows(args.split, args.frames)
    print(f"{args.split}: {len(x2)} windows of {args.frames} frames (S9 camera 0, 50 Hz)\n")
    print("Mean 3D error of linear interpolation over the pruned frames (mm)\n")
    print("| kept share | " + " | ".join(CHOICES) + " |")
    print("| --- |" + " --- |" * len(CHOICES))
    per_action: dict[str, dict[str, float]] = defaultdict(dict)
    for keep in [float(v) for v in args.keep.split(",")]:
        count = max(2, int(keep * args.frames + 0.5))
        cells = []
        for choice in CHOICES:
            chosen = choose(choice, x2, x3, count)
            err = (interpolate_frames(x3, chosen) - x3).norm(dim=-1).mean(-1) * 1000  # (N, F)
            pruned = ~chosen
            cells.append(f"{(err * pruned).sum() / pruned.sum():.1f}")
            if keep == 0.25:
                for act in sorted(set(actions)):
                    rows = torch.tensor([a == act for a in actions])
                    p = pruned[rows]
                    per_action[act][choice] = float((err[rows] * p).sum() / p.sum())
        print(f"| {keep:g} | " + " | ".join(cells) + " |")
    print("\nPer action at kept share 0.25 (mm)\n")
    print("| action | " + " | ".join(CHOICES) + " |")
    print("| --- |" + " --- |" * len(CHOICES))
    for act, row in per_action.items():
        print(f"| {act} | " + " | ".join(f"{row[c]:.1f}" for c in CHOICES) + " |")


if __name__ == "__main__":
    main()
