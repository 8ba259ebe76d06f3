"""Accuracy and speed table of a trained checkpoint on the CMU test split.

Samples H = max(--hypotheses) once per input kind (GT 2D, noisy 2D) and reports MPJPE and
P-MPJPE for every aggregation and H, the sampling speed, and the training time stored in the
checkpoint. Prints a Markdown table for benchmarks/RESULTS.md.

    python benchmarks/accuracy.py --checkpoint runs/cmu_small/model.safetensors
"""

from __future__ import annotations

import argparse
import time

import torch

from htpose.checkpoint import load_model
from htpose.data.sources import load_sequences
from htpose.evaluate import add_noise, evaluate, noise_from_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--hypotheses", default="1,5,20")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--views", default="0", help="camera indices per test subject")
    parser.add_argument("--aggregate", default="mean,jpma,pbest,jbest")
    parser.add_argument("--inputs", default="gt,noisy")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model, cfg, meta = load_model(args.checkpoint)
    hyps = [int(h) for h in args.hypotheses.split(",")]
    aggs = args.aggregate.split(",")
    views = [int(v) for v in args.views.split(",")]
    base = load_sequences(
        cfg.data.clips, cfg.data.camera_file, cfg.data.test_split, cfg.data.test_subjects, views
    )
    rows = []
    speed = {}
    for kind in args.inputs.split(","):
        seqs = base if kind == "gt" else add_noise(base, noise_from_config(cfg))
        tick = time.perf_counter()
        res = evaluate(model, cfg, seqs, hyps, args.steps, aggs, True, 0, cfg.eval.batch_windows)
        speed[kind] = (res.fps, time.perf_counter() - tick, res.frames)
        for (agg, h), table in res.tables.items():
            rows.append(
                (
                    kind,
                    agg,
                    h,
                    table.mean_over_actions("mpjpe_mm"),
                    table.mean_over_actions("p_mpjpe_mm"),
                    table.mean_over_frames("mpjpe_mm"),
                )
            )

    frames = speed[next(iter(speed))][2]
    print(
        f"\ncheckpoint {args.checkpoint} (step {meta.get('step')}, trained "
        f"{meta.get('train_seconds', float('nan')) / 60:.1f} min), K={args.steps}, test-time flip, "
        f"{len(base)} test sequences (S9/S11 views {args.views}), {frames} frames, "
        f"torch threads {torch.get_num_threads()}\n"
    )
    print("| 2D input | aggregation | H | MPJPE (mm) | P-MPJPE (mm) | MPJPE all frames (mm) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for kind, agg, h, m, p, mf in rows:
        label = "GT 2D" if kind == "gt" else "noisy 2D"
        print(f"| {label} | {agg} | {h} | {m:.1f} | {p:.1f} | {mf:.1f} |")
    print()
    for kind, (fps, wall, n) in speed.items():
        print(
            f"- {kind}: sampling H={max(hyps)} x K={args.steps} (x2 flip): {fps:.1f} frames/s "
            f"({n} frames, {wall:.0f} s wall with aggregation)"
        )


if __name__ == "__main__":
    main()
