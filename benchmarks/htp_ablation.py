"""HTP ablation: trained checkpoints side by side on cost, speed and accuracy.

For every ``name=checkpoint`` given (the first is the reference, normally the unpruned
baseline): MACs of one training step and one inference (H x K, flip) counted with
FlopCounterMode, inference speed on one real test window timed alternately across all
models in this process (medians), and MPJPE / P-MPJPE on the CMU test split (GT 2D).
Prints a Markdown table for benchmarks/RESULTS.md.

    python benchmarks/htp_ablation.py baseline=runs/cmu_small/model.safetensors \\
        htp=runs/cmu_small_htp/model.safetensors
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from htpose.checkpoint import load_model
from htpose.data.camera import normalize_keypoints
from htpose.data.sources import load_sequences
from htpose.diffusion.ddim import DDIMSampler
from htpose.diffusion.pipeline import sample_hypotheses
from htpose.evaluate import evaluate
from htpose.profile import profile_config


class _Summary:
    """An evaluate-JSON result read like an ErrorTable."""

    def __init__(self, values: dict) -> None:
        self.values = values

    def mean_over_actions(self, key: str) -> float:
        return float(self.values[key])


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="name=checkpoint, the reference first")
    parser.add_argument("--hypotheses", type=int, default=20)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--views", default="0")
    parser.add_argument("--timing-runs", type=int, default=5)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument(
        "--accuracy",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="take a variant's accuracy from an 'htpose evaluate --json' file (H, mean and "
        "jpma) instead of evaluating it here",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    return parser.parse_args()


def _frames_per_second(models: dict, window: torch.Tensor, h: int, k: int, runs: int) -> dict:
    """Speed on one window ``(1, F, J, 2)``: models alternating, warm, medians of ``runs``."""
    calls = {}
    for n, (model, cfg, _) in models.items():
        sampler = DDIMSampler.from_config(cfg.diffusion, k)
        calls[n] = lambda m=model, s=sampler: sample_hypotheses(m, s, window, h, True)
    times: dict[str, list[float]] = {n: [] for n in calls}
    for fn in calls.values():
        fn()
    for _ in range(runs):
        for n, fn in calls.items():
            tick = time.perf_counter()
            fn()
            times[n].append(time.perf_counter() - tick)
    return {n: window.shape[1] / statistics.median(t) for n, t in times.items()}


def _accuracy(args: argparse.Namespace, models: dict, seqs: list) -> dict:
    """Per variant, the mean and JPMA tables: from ``--accuracy`` files, else evaluated."""
    h, k = args.hypotheses, args.steps
    acc = {}
    for item in args.accuracy:
        name, _, path = item.partition("=")
        doc = json.loads(Path(path).read_text())
        found = {r["aggregate"]: r for r in doc["results"] if r["hypotheses"] == h}
        acc[name] = {a: _Summary(found[a]) for a in ("mean", "jpma")}
    if args.skip_accuracy:
        return acc
    for n, (model, cfg, _) in models.items():
        if n in acc:
            continue
        res = evaluate(model, cfg, seqs, [h], k, ["mean", "jpma"], True, 0, cfg.eval.batch_windows)
        acc[n] = {a: res.tables[(a, h)] for a in ("mean", "jpma")}
    return acc


def _print_table(models: dict, macs: dict, fps: dict, acc: dict) -> None:
    ref = next(iter(models))
    print(
        "| variant | infer GMACs (all) | infer reduction | train GMACs (all) | train reduction "
        "| frames/s | speed-up | MPJPE mean | P-MPJPE mean | MPJPE JPMA |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in models:
        m, r = macs[n], macs[ref]
        row = [
            n,
            f"{m.infer_gmacs:.2f}",
            f"{1 - m.infer_gmacs / r.infer_gmacs:.1%}",
            f"{m.train_gmacs:.3f}",
            f"{1 - m.train_gmacs / r.train_gmacs:.1%}",
            f"{fps[n]:.1f}",
            f"{fps[n] / fps[ref]:.2f}x",
        ]
        if n in acc:
            row += [
                f"{acc[n]['mean'].mean_over_actions('mpjpe_mm'):.1f}",
                f"{acc[n]['mean'].mean_over_actions('p_mpjpe_mm'):.1f}",
                f"{acc[n]['jpma'].mean_over_actions('mpjpe_mm'):.1f}",
            ]
        else:
            row += ["-", "-", "-"]
        print("| " + " | ".join(row) + " |")


def main() -> None:
    args = _parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    models = {}
    for item in args.runs:
        name, _, path = item.partition("=")
        models[name] = load_model(path)
    first_cfg = next(iter(models.values()))[1]
    seqs = load_sequences(
        first_cfg.data.clips,
        first_cfg.data.camera_file,
        "test",
        first_cfg.data.test_subjects,
        [int(v) for v in args.views.split(",")],
    )
    h, k = args.hypotheses, args.steps
    macs = {n: profile_config(cfg, h, k, True, 1) for n, (_, cfg, _) in models.items()}
    frames, cam = first_cfg.model.frames, seqs[0].camera
    window = normalize_keypoints(
        torch.from_numpy(seqs[0].keypoints_2d[:frames]), cam.width, cam.height,
        first_cfg.data.normalization,
    )[None]  # fmt: skip
    fps = _frames_per_second(models, window, h, k, args.timing_runs)
    acc = _accuracy(args, models, seqs)
    print(
        f"\nH={h}, K={k}, test-time flip; speed: one {frames}-frame window, median of "
        f"{args.timing_runs} alternating runs, torch threads {torch.get_num_threads()}; "
        f"accuracy: CMU test split, S9/S11 views {args.views}, GT 2D, "
        f"{sum(map(len, seqs))} frames\n"
    )
    _print_table(models, macs, fps, acc)


if __name__ == "__main__":
    main()
