"""The accuracy-cost frontier of one trained HTP checkpoint, re-planned without retraining.

TCEP and MGPTP have no weights, so one checkpoint can run at any kept share (``keep_ratio``)
and merged share (``merge_ratio``) and with any frame choice (``scoring``: TCEP's
``motion_graph``, or the controls ``uniform`` and ``random``). For every point this prints,
measured in one run: inference MACs (FlopCounterMode, H x K, flip), inference speed (one
batch of real windows, points alternating, medians) and MPJPE / P-MPJPE (mean of H, GT 2D,
per action in the JSON). It draws MPJPE against MACs (``--plot``). The sweep of keep ratios
runs with the checkpoint's merge ratio; the sweep of merge ratios with its keep ratio.

This measures the frame choice at inference only: a model trained with TCEP is judged with
other choices it never saw. Controls trained with their own choice are another question
(issue 9's trained controls).

    python benchmarks/htp_frontier.py --checkpoint src/htpose/weights/cmu_htp.safetensors \\
        --split val --json runs/frontier_val.json --plot benchmarks/htp_frontier.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from htpose.checkpoint import load_model
from htpose.data.camera import normalize_keypoints
from htpose.data.sources import load_sequences
from htpose.data.temporal import window_indices
from htpose.diffusion.ddim import DDIMSampler
from htpose.diffusion.pipeline import sample_hypotheses
from htpose.evaluate import evaluate
from htpose.profile import profile_config


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def _points(
    cfg, keep: list[float], merge: list[float], scorings: list[str], bands: list[int]
) -> list[dict]:
    """Every (scoring, keep, merge, SFT band) to measure, the checkpoint's own included."""
    p = cfg.model.pruning
    pts = []
    for s in scorings:
        for r in sorted(set(keep) | {p.keep_ratio}):
            pts.append({"scoring": s, "keep_ratio": r, "merge_ratio": p.merge_ratio})
        if p.mgptp:
            for r in sorted(set(merge) - {p.merge_ratio}):
                pts.append({"scoring": s, "keep_ratio": p.keep_ratio, "merge_ratio": r})
    for b in sorted(set(bands) - {p.sft_band}):
        pts.append({"scoring": p.scoring, "keep_ratio": p.keep_ratio,
                    "merge_ratio": p.merge_ratio, "sft_band": b})  # fmt: skip
    for pt in pts:
        pt.setdefault("sft_band", p.sft_band)
    return pts


def _windows(seqs, cfg, count: int) -> torch.Tensor:
    """``(count, F, 17, 2)`` normalised real windows, evenly from the first sequences."""
    out = []
    f = cfg.model.frames
    for seq in seqs:
        for start in range(0, len(seq), f):
            idx = window_indices(len(seq), start, f)
            px = torch.from_numpy(seq.keypoints_2d[idx])
            cam = seq.camera
            out.append(normalize_keypoints(px, cam.width, cam.height, cfg.data.normalization))
            if len(out) == count:
                return torch.stack(out)
    return torch.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--subjects", default="S9")
    ap.add_argument("--views", default="0")
    ap.add_argument("--keep", type=_floats, default=[0.25, 0.33, 0.5, 0.75, 1.0])
    ap.add_argument("--merge", type=_floats, default=[0.25, 0.33, 0.75, 1.0])
    ap.add_argument("--scorings", default="motion_graph,uniform,random")
    ap.add_argument(
        "--bands",
        default="2,4,8",
        help="SFT band widths to try at the checkpoint's own plan (0: every kept frame)",
    )
    ap.add_argument("--hypotheses", type=int, default=20)
    ap.add_argument("--steps", type=int, help="DDIM steps K (default: the model's)")
    ap.add_argument("--timing-runs", type=int, default=5)
    ap.add_argument("--timing-windows", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    ap.add_argument("--plot")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model, cfg, _ = load_model(args.checkpoint)
    if not cfg.model.pruning.tcep:
        print("htpose: error: the frontier needs an HTP checkpoint", file=sys.stderr)
        raise SystemExit(2)
    h, k = args.hypotheses, args.steps or cfg.diffusion.sampling_steps
    seqs = load_sequences(
        cfg.data.clips, cfg.data.camera_file, args.split, args.subjects.split(","),
        [int(v) for v in args.views.split(",")],
    )  # fmt: skip
    own = cfg.model.pruning
    points = _points(
        cfg, args.keep, args.merge, args.scorings.split(","),
        [int(b) for b in args.bands.split(",") if b],
    )  # fmt: skip
    plans = [replace(own, **pt) for pt in points]
    for plan in plans:
        plan.validate(cfg.model.frames, cfg.model.depth)

    windows = _windows(seqs, cfg, args.timing_windows)
    sampler = DDIMSampler.from_config(cfg.diffusion, k)
    times: list[list[float]] = [[] for _ in points]
    for run in range(args.timing_runs + 1):  # the first round warms up
        for i, plan in enumerate(plans):
            cfg.model.pruning = plan
            torch.manual_seed(0)
            tick = time.perf_counter()
            with torch.no_grad():
                sample_hypotheses(model, sampler, windows, h, True)
            if run:
                times[i].append(time.perf_counter() - tick)

    rows = []
    for pt, plan, tm in zip(points, plans, times):
        cfg.model.pruning = plan
        macs = profile_config(cfg, h, k, True, 1)
        torch.manual_seed(0)
        res = evaluate(model, cfg, seqs, (h,), k, ("mean",), True, 0, cfg.eval.batch_windows,
                       progress=False)  # fmt: skip
        table = res.tables[("mean", h)].summary()
        rows.append({
            **pt,
            "infer_gmacs": macs.infer_gmacs,
            "frames_per_s": windows.shape[0] * cfg.model.frames / statistics.median(tm),
            "mpjpe_mm": table["mpjpe_mm"],
            "p_mpjpe_mm": table["p_mpjpe_mm"],
            "per_action": {a: v["mpjpe_mm"] for a, v in table["per_action"].items()},
        })  # fmt: skip
        print(json.dumps({k_: v for k_, v in rows[-1].items() if k_ != "per_action"}), flush=True)
    cfg.model.pruning = own
    _print_table(rows, args, h, k, own)
    if args.json:
        Path(args.json).write_text(json.dumps({"split": args.split, "H": h, "K": k,
                                               "rows": rows}, indent=1))  # fmt: skip
    if args.plot:
        _plot(rows, args.plot, args.split, own)


def _print_table(rows: list[dict], args, h: int, k: int, own) -> None:
    print(
        f"\n{args.checkpoint}, {args.split} ({args.subjects} view {args.views}), H={h}, K={k}, "
        f"flip; speed: {args.timing_windows} windows per call, median of {args.timing_runs}, "
        f"{torch.get_num_threads()} threads\n"
    )
    print("| scoring | keep | merge | SFT band | infer GMACs | frames/s | MPJPE | P-MPJPE |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    trained = (own.keep_ratio, own.merge_ratio, own.scoring, own.sft_band)
    for r in rows:
        here = (r["keep_ratio"], r["merge_ratio"], r["scoring"], r["sft_band"])
        mark = " (trained)" if here == trained else ""
        print(
            f"| {r['scoring']}{mark} | {r['keep_ratio']:g} | {r['merge_ratio']:g} | "
            f"{r['sft_band'] or 'all'} | "
            f"{r['infer_gmacs']:.2f} | {r['frames_per_s']:.0f} | {r['mpjpe_mm']:.1f} | "
            f"{r['p_mpjpe_mm']:.1f} |"
        )
    # Per action: where does TCEP's choice differ from evenly spaced frames?
    rows = [r for r in rows if r["sft_band"] == own.sft_band]
    by = {(r["scoring"], r["keep_ratio"], r["merge_ratio"]): r for r in rows}
    pairs = [(r, by.get(("uniform", r["keep_ratio"], r["merge_ratio"])))
             for r in rows if r["scoring"] == "motion_graph"]  # fmt: skip
    pairs = [(a, b) for a, b in pairs if b is not None and a["keep_ratio"] < 1.0]
    if pairs:
        actions = sorted(pairs[0][0]["per_action"])
        print("\nMPJPE of TCEP minus evenly spaced frames, per action (negative: TCEP better)\n")
        head = " | ".join(f"keep {a['keep_ratio']:g} merge {a['merge_ratio']:g}" for a, _ in pairs)
        print(f"| action | {head} |")
        print("| --- |" + " --- |" * len(pairs))
        for act in actions:
            cells = " | ".join(
                f"{a['per_action'][act] - b['per_action'][act]:+.1f}" for a, b in pairs
            )
            print(f"| {act} | {cells} |")


def _plot(rows: list[dict], path: str, split: str, own) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    styles = {"motion_graph": ("TCEP (motion graph)", "o-"), "uniform": ("evenly spaced", "s--"),
              "random": ("random frames", "^:")}  # fmt: skip
    for scoring, (label, style) in styles.items():
        pts = sorted(
            (
                r
                for r in rows
                if r["scoring"] == scoring
                and r["merge_ratio"] == own.merge_ratio
                and r["sft_band"] == own.sft_band
            ),
            key=lambda r: r["infer_gmacs"],
        )
        if not pts:
            continue
        ax.plot([r["infer_gmacs"] for r in pts], [r["mpjpe_mm"] for r in pts], style, label=label)
        for r in pts:
            ax.annotate(f"{r['keep_ratio']:g}", (r["infer_gmacs"], r["mpjpe_mm"]),
                        textcoords="offset points", xytext=(3, 3), fontsize=7)  # fmt: skip
    ax.set_xlabel("inference GMACs per 81-frame window (H x K, flip)")
    ax.set_ylabel(f"MPJPE on {split} (mm)")
    ax.set_title("One HTP checkpoint re-planned: kept share of frames (labels)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
