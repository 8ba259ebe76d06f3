"""What a known body height buys: the lift rescaled to the person's stature (``--body-height``).

One view cannot tell a small near body from a large far one, so a lifter returns a body of
about the training data's size. Users who know the person's height (sports science and
animation usually do) can give it; the lift is then scaled so that its
:func:`htpose.skeleton.stature` matches. Here the height a user would give is the true
stature of each clip's skeleton (the same estimator on the ground truth), and MPJPE is
compared with and without the rescaling, per action (GT 2D, S9 camera 0, mean of H):

    python benchmarks/known_height.py --split val --split test_wide --threads 1
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch

from htpose.checkpoint import load_model
from htpose.data.sources import load_sequences
from htpose.evaluate import predict_sequences
from htpose.lift import bundled_model_path
from htpose.skeleton import stature


def split_rows(model, cfg, split: str, hypotheses: int) -> dict[str, list[float]]:
    """Per action: MPJPE (mm) as lifted, with the true stature given, and the size ratio."""
    seqs = load_sequences(
        cfg.data.clips, cfg.data.camera_file, split, ["S9"], [0], distortion=cfg.data.distortion
    )
    preds = predict_sequences(model, cfg, seqs, hypotheses=hypotheses)
    rows: dict[str, list[list[float]]] = defaultdict(list)
    for seq, pred in zip(seqs, preds):
        true = seq.joints_3d - seq.joints_3d[:, :1]
        ratio = stature(true) / stature(pred)
        plain = 1000 * np.linalg.norm(pred - true, axis=-1).mean()
        scaled = 1000 * np.linalg.norm(ratio * pred - true, axis=-1).mean()
        rows[seq.action].append([plain, scaled, 1 / ratio])
    return {action: np.mean(v, axis=0).tolist() for action, v in sorted(rows.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None, help="default: the bundled model")
    parser.add_argument("--split", action="append", default=None)
    parser.add_argument("--hypotheses", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, cfg, _ = load_model(args.checkpoint or bundled_model_path())
    print("| split | action | MPJPE as lifted | with the true height | predicted / true size |")
    print("| --- | --- | --- | --- | --- |")
    for split in args.split or ["val"]:
        rows = split_rows(model, cfg, split, args.hypotheses)
        for action, (plain, scaled, size) in rows.items():
            print(f"| {split} | {action} | {plain:.1f} | {scaled:.1f} | {size:.3f} |")
        plain, scaled, size = np.mean(list(rows.values()), axis=0)
        print(f"| {split} | **mean over actions** | {plain:.1f} | {scaled:.1f} | {size:.3f} |")


if __name__ == "__main__":
    main()
