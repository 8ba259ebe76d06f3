"""The accuracy-cost frontier of trained models: HTP, its controls and smaller models.

TCEP and MGPTP have no weights, so an HTP checkpoint can run at any kept share
(``keep_ratio``), merged share (``merge_ratio``) and frame choice (``scoring``) without
retraining. Each ``--model NAME=CKPT[,CKPT...]`` is one variant, its checkpoints the seeds
of its training (same recipe, different ``train.seed``). For every variant and point this
measures in one run: inference MACs (FlopCounterMode, H x K, flip), inference speed (one
batch of real windows, every variant and point alternating, medians; first seed only) and
MPJPE / P-MPJPE (mean of H, GT 2D) as the mean and standard deviation over the seeds, per
action in the JSON. HTP variants are swept over ``--keep`` (at their own merge ratio) and
``--merge`` (at their own keep ratio); an unpruned model is one point. ``--scorings`` adds
re-planned frame choices (a model judged with a choice it was not trained with); by
default every variant runs with its own. ``--sweep KEY=V,V,...`` adds points that change one
other field of the pruning config at the trained ratios, for the sensitivity curves of
TCEP's motion graph (``graph_threshold``, the paper's eta; ``graph_radius``). ``--plot``
draws MPJPE against MACs.

``--accuracy-from`` takes the accuracy of points already measured (the JSON of earlier runs,
for example one per variant, run while other variants were still training, with
``--timing-runs 0``) and measures only MACs and speed here, so that a study split over
several processes still gets its speeds side by side in one run.

    python benchmarks/htp_frontier.py --model TCEP=runs/a_s0/model.safetensors,... \\
        --model uniform=... --split val --hypotheses 5 --json runs/frontier.json \\
        --plot benchmarks/htp_frontier.png
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

OWN = "own"


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def _variant(text: str) -> tuple[str, list[str]]:
    name, sep, paths = text.rpartition("=")
    paths_list = [p for p in paths.split(",") if p]
    if not paths_list:
        raise argparse.ArgumentTypeError(f"no checkpoint in {text!r}")
    return (name if sep else Path(paths_list[0]).parent.name or "model"), paths_list


SWEEPABLE = ("graph_threshold", "graph_radius")


def _sweep(text: str) -> tuple[str, list[float]]:
    key, sep, values = text.partition("=")
    if not sep or key not in SWEEPABLE or not values:
        raise argparse.ArgumentTypeError(f"expected KEY=V,V,... with KEY in {SWEEPABLE}")
    cast = int if key == "graph_radius" else float
    return key, [cast(v) for v in values.split(",") if v]


def _points(
    cfg, keep: list[float], merge: list[float], scorings: list[str],
    sweeps: list[tuple[str, list[float]]] = (),
) -> list[dict]:  # fmt: skip
    """Every (scoring, keep, merge) to measure for one HTP variant, its own plan included,
    and every ``(key, value)`` of ``sweeps`` at the trained ratios."""
    p = cfg.model.pruning
    if not p.tcep:
        return [{}]
    pts = []
    for s in dict.fromkeys(p.scoring if s == OWN else s for s in scorings):
        for r in sorted(set(keep) | {p.keep_ratio}):
            pts.append({"scoring": s, "keep_ratio": r})
        if p.mgptp:
            for r in sorted(set(merge) - {p.merge_ratio}):
                pts.append({"scoring": s, "merge_ratio": r})
        for key, values in sweeps:
            for v in sorted(set(values) - {getattr(p, key)}):
                pts.append({"scoring": s, key: v})
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


def _plan(cfg, point: dict):
    return replace(cfg.model.pruning, **point) if point else cfg.model.pruning


def _describe(cfg, point: dict) -> dict:
    p = _plan(cfg, point)
    if not p.tcep:
        return {"scoring": "-", "keep_ratio": 1.0, "merge_ratio": 1.0, "trained": True,
                "sweep": "point"}  # fmt: skip
    trained = all(getattr(cfg.model.pruning, k) == v for k, v in point.items())
    swept = [k for k in point if k in SWEEPABLE]
    return {
        "sweep": swept[0] if swept else "merge" if "merge_ratio" in point else "keep",
        "scoring": p.scoring,
        "keep_ratio": p.keep_ratio,
        "merge_ratio": p.merge_ratio if p.mgptp else 1.0,
        "graph_threshold": p.graph_threshold,
        "graph_radius": p.graph_radius,
        "trained": trained,
    }


def _time_points(variants, args, h, k) -> dict[tuple[str, int], float]:
    """Frames per second of every (variant, point), first seed, all alternating (none when
    ``--timing-runs 0``)."""
    if args.timing_runs == 0:
        return {}
    times: dict[tuple[str, int], list[float]] = {}
    for run in range(args.timing_runs + 1):  # the first round warms up
        for v in variants:
            model, cfg = v["models"][0]
            own = cfg.model.pruning
            sampler = DDIMSampler.from_config(cfg.diffusion, k)
            for i, pt in enumerate(v["points"]):
                cfg.model.pruning = _plan(cfg, pt)
                torch.manual_seed(0)
                tick = time.perf_counter()
                with torch.no_grad():
                    sample_hypotheses(model, sampler, v["windows"], h, True)
                if run:
                    times.setdefault((v["name"], i), []).append(time.perf_counter() - tick)
            cfg.model.pruning = own
    return {
        key: args.timing_windows * variants[0]["models"][0][1].model.frames / statistics.median(t)
        for key, t in times.items()
    }


def _key(row: dict) -> tuple:
    """What identifies a measured point: its variant and its plan."""
    fields = ("variant", "sweep", "scoring", "keep_ratio", "merge_ratio", "graph_threshold",
              "graph_radius")  # fmt: skip
    return tuple(row.get(f) for f in fields)


def _measured_rows(paths: list[str], split: str, h: int, k: int, variants: list[dict]) -> dict:
    """Rows of earlier runs' JSON by :func:`_key`. A run on another split, H or K, or whose
    variant of the same name had other checkpoints, is refused: its accuracy is not these
    models'."""
    ours = {v["name"]: v["paths"] for v in variants}
    rows = {}
    for path in paths:
        doc = json.loads(Path(path).read_text())
        if (doc["split"], doc["H"], doc["K"]) != (split, h, k):
            _refuse(f"{path} was measured on {doc['split']} at H={doc['H']}, K={doc['K']}, "
                    f"not {split} at H={h}, K={k}")  # fmt: skip
        for name, ckpts in doc["variants"].items():
            if name in ours and ckpts != ours[name]:
                _refuse(f"{path} measured {name!r} with other checkpoints ({', '.join(ckpts)})")
        rows.update({_key(r): r for r in doc["rows"]})
    return rows


def _refuse(message: str) -> None:
    print(f"htpose: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _measure(v: dict, point: dict, seqs, h: int, k: int) -> dict:
    """MACs and seed-averaged accuracy of one variant at one point."""
    model0, cfg0 = v["models"][0]
    own = cfg0.model.pruning
    row = {"variant": v["name"], **_describe(cfg0, point)}
    cfg0.model.pruning = _plan(cfg0, point)
    row["infer_gmacs"] = profile_config(cfg0, h, k, True, 1).infer_gmacs
    cfg0.model.pruning = own
    mpjpes, pmpjpes, actions = [], [], []
    for model, cfg in v["models"]:
        own = cfg.model.pruning
        cfg.model.pruning = _plan(cfg, point)
        torch.manual_seed(0)
        res = evaluate(model, cfg, seqs, (h,), k, ("mean",), True, 0, cfg.eval.batch_windows,
                       progress=False)  # fmt: skip
        cfg.model.pruning = own
        table = res.tables[("mean", h)].summary()
        mpjpes.append(table["mpjpe_mm"])
        pmpjpes.append(table["p_mpjpe_mm"])
        actions.append({a: r["mpjpe_mm"] for a, r in table["per_action"].items()})
    spread = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
    row.update({
        "seeds": len(mpjpes), "mpjpe_mm": statistics.mean(mpjpes), "mpjpe_sd": spread(mpjpes),
        "p_mpjpe_mm": statistics.mean(pmpjpes), "p_mpjpe_sd": spread(pmpjpes),
        "mpjpe_per_seed": mpjpes,
        "per_action": {a: statistics.mean(s[a] for s in actions) for a in actions[0]},
    })  # fmt: skip
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--model", type=_variant, action="append", default=[], metavar="NAME=CKPT[,CKPT...]",
        help="a variant and its seeds' checkpoints",
    )  # fmt: skip
    ap.add_argument(
        "--checkpoint", type=_variant, action="append", default=[],
        help="a single checkpoint (the same as --model with one seed)",
    )  # fmt: skip
    ap.add_argument("--split", default="val")
    ap.add_argument("--subjects", default="S9")
    ap.add_argument("--views", default="0")
    ap.add_argument("--keep", type=_floats, default=[0.25, 0.33, 0.5, 0.75, 1.0])
    ap.add_argument("--merge", type=_floats, default=[])
    ap.add_argument("--scorings", default=OWN, help="own, or e.g. motion_graph,uniform,random")
    ap.add_argument(
        "--sweep", type=_sweep, action="append", default=[], metavar="KEY=V,V,...",
        help=f"also sweep one of {', '.join(SWEEPABLE)} at the trained ratios",
    )  # fmt: skip
    ap.add_argument("--hypotheses", type=int, default=5)
    ap.add_argument("--steps", type=int, help="DDIM steps K (default: each model's)")
    ap.add_argument("--timing-runs", type=int, default=5)
    ap.add_argument("--timing-windows", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    ap.add_argument("--plot")
    ap.add_argument(
        "--accuracy-from", type=lambda t: [p for p in t.split(",") if p], default=[],
        metavar="JSON[,JSON...]", help="take measured points' accuracy from these runs' JSON",
    )  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    given = args.model + args.checkpoint
    if not given:
        _refuse("give at least one --model NAME=CKPT")

    variants, seqs = [], None
    for name, paths in given:
        models = [load_model(p)[:2] for p in paths]
        cfg = models[0][1]
        if any(c.model != cfg.model for _, c in models):
            _refuse(f"the seeds of {name} differ in model config")
        if seqs is None:
            seqs = load_sequences(
                cfg.data.clips, cfg.data.camera_file, args.split, args.subjects.split(","),
                [int(v) for v in args.views.split(",")],
            )  # fmt: skip
        points = _points(cfg, args.keep, args.merge, args.scorings.split(","), args.sweep)
        for pt in points:
            _plan(cfg, pt).validate(cfg.model.frames, cfg.model.depth)
        windows = _windows(seqs, cfg, args.timing_windows)
        variants.append({"name": name, "paths": paths, "models": models, "points": points,
                         "windows": windows})  # fmt: skip
    h = args.hypotheses
    k = args.steps or variants[0]["models"][0][1].diffusion.sampling_steps

    fps = _time_points(variants, args, h, k)
    known = _measured_rows(args.accuracy_from, args.split, h, k, variants)
    rows = []
    for v in variants:
        for i, pt in enumerate(v["points"]):
            row = known.get(_key({"variant": v["name"], **_describe(v["models"][0][1], pt)}))
            row = dict(row) if row else _measure(v, pt, seqs, h, k)
            row["frames_per_s"] = fps.get((v["name"], i))
            rows.append(row)
            print(json.dumps({k_: v_ for k_, v_ in row.items() if k_ != "per_action"}), flush=True)
    _print_table(rows, args, h, k)
    if args.json:
        doc = {"split": args.split, "H": h, "K": k,
               "variants": {v["name"]: v["paths"] for v in variants}, "rows": rows}  # fmt: skip
        Path(args.json).write_text(json.dumps(doc, indent=1))
    if args.plot:
        _plot(rows, args.plot, args.split)


def _print_table(rows: list[dict], args, h: int, k: int) -> None:
    print(
        f"\n{args.split} ({args.subjects} view {args.views}), H={h}, K={k}, flip; "
        f"speed: {args.timing_windows} windows per call, median of {args.timing_runs}, "
        f"{torch.get_num_threads()} threads; MPJPE mean +- sd over seeds\n"
    )
    print(
        "| variant | scoring | keep | merge | eta | radius | infer GMACs | frames/s | MPJPE "
        "| P-MPJPE |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        mark = " (trained)" if r["trained"] and r["scoring"] != "-" else ""
        graph = (f"{r['graph_threshold']:g} | {r['graph_radius']}" if "graph_radius" in r
                 else "- | -")  # fmt: skip
        speed = "-" if r["frames_per_s"] is None else f"{r['frames_per_s']:.0f}"
        print(
            f"| {r['variant']} | {r['scoring']}{mark} | {r['keep_ratio']:g} | "
            f"{r['merge_ratio']:g} | {graph} | {r['infer_gmacs']:.3f} | {speed} | "
            f"{r['mpjpe_mm']:.1f} +- {r['mpjpe_sd']:.1f} | "
            f"{r['p_mpjpe_mm']:.1f} +- {r['p_mpjpe_sd']:.1f} |"
        )
    _print_per_action(rows)


def _print_per_action(rows: list[dict]) -> None:
    """Each variant's trained point, per action, beside the first variant's."""
    trained = [r for r in rows if r["trained"]]
    if len(trained) < 2:
        return
    ref = trained[0]
    print(f"\nMPJPE per action at each variant's trained point (first column: {ref['variant']})\n")
    print("| action | " + " | ".join(r["variant"] for r in trained) + " |")
    print("| --- |" + " --- |" * len(trained))
    for act in sorted(ref["per_action"]):
        cells = " | ".join(f"{r['per_action'][act]:.1f}" for r in trained)
        print(f"| {act} | {cells} |")


def _plot(rows: list[dict], path: str, split: str) -> None:
    """MPJPE against MACs: each variant's sweep of kept shares, unpruned models as points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 6.0))
    styles = ["o-", "s--", "^:", "D-.", "v-", "P--", "X:", "*-"]
    own = {r["variant"]: r["scoring"] for r in rows if r["trained"]}
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["sweep"] in ("keep", "point"):
            groups.setdefault((r["variant"], r["scoring"]), []).append(r)
    for n, ((variant, scoring), pts) in enumerate(groups.items()):
        pts.sort(key=lambda r: r["infer_gmacs"])
        label = variant if scoring == own.get(variant) else f"{variant}, re-planned: {scoring}"
        ax.errorbar([r["infer_gmacs"] for r in pts], [r["mpjpe_mm"] for r in pts],
                    yerr=[r["mpjpe_sd"] for r in pts], fmt=styles[n % len(styles)],
                    capsize=3, label=label)  # fmt: skip
        for r in pts:
            if r["sweep"] == "keep":
                ax.annotate(f"{r['keep_ratio']:g}", (r["infer_gmacs"], r["mpjpe_mm"]),
                            textcoords="offset points", xytext=(3, 3), fontsize=7)  # fmt: skip
    ax.set_xlabel("inference GMACs per 81-frame window (H x K, flip)")
    ax.set_ylabel(f"MPJPE on {split} (mm), mean +- sd over seeds")
    ax.set_title("Accuracy against cost; labels: kept share of frames")
    ax.grid(alpha=0.3)
    # Below the axes: inside, it hides the points of whichever variant lies under it.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
