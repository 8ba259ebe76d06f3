"""The ``htpose`` command: a thin layer of argument parsing over the library.

User errors print one line (``htpose: error: ...``) and exit 2; nothing prints a traceback
unless ``HTPOSE_DEBUG=1`` is set.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import NoReturn

from htpose.errors import HtposeError
from htpose.skeleton import MAX_STATURE_M, MIN_STATURE_M


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _str_list(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        # An empty list would silently fall back to the default (all subjects, say).
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return values


def _int_in(lo: int, hi: int, what: str):
    """An argparse type: an integer in ``[lo, hi]``, else a usage error naming ``what``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _int_in(1, 2**63 - 1, "a positive integer")
_nonnegative_int = _int_in(0, 10**12, "an integer in [0, 1e12]")
_seed = _int_in(0, 2**63 - 1, "a seed in [0, 2^63 - 1]")  # what torch and numpy take
_opset = _int_in(11, 20, "an ONNX opset in [11, 20]")


def _float_in(lo: float, hi: float, what: str):
    """An argparse type: a number in ``[lo, hi]`` (NaN and words refused), else a usage
    error naming ``what``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_unit_fraction = _float_in(0.0, 0.9, "a number in [0, 0.9]")  # an overlap share
_tilt_angle = _float_in(-180.0, 180.0, "degrees in [-180, 180]")
_body_height = _float_in(
    MIN_STATURE_M, MAX_STATURE_M, f"a height in metres in [{MIN_STATURE_M}, {MAX_STATURE_M}]"
)


def _view(text: str) -> tuple[float, float]:
    """``ELEV,AZIM`` in degrees for the 3D panel of renders."""
    try:
        elev, azim = (float(v) for v in text.split(","))
    except ValueError:
        elev = azim = math.nan
    if not (-90 <= elev <= 90 and -360 <= azim <= 360):
        raise argparse.ArgumentTypeError(f"expected ELEV,AZIM in degrees, got {text!r}")
    return elev, azim


def _person(text: str) -> str | int:
    if text in ("largest", "center"):
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("largest, center, or a person index N >= 0") from None
    if not 0 <= value <= 64:
        raise argparse.ArgumentTypeError("a person index must be in 0..64")
    return value


def _add_flip_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--flip",
        choices=("none", "average", "split"),
        help="test-time flip: average (each step with the mirror, 2x cost), split (half the "
        "hypotheses see the mirror, no extra cost), none (default: diffusion.flip_mode)",
    )
    p.add_argument("--no-flip", action="store_true", help="the same as --flip none")


def _flip(args: argparse.Namespace) -> bool | str:
    """The flip mode asked for, or True for the model's own default."""
    if args.no_flip:
        return "none"
    return args.flip or True


def _add_replan_args(p: argparse.ArgumentParser) -> None:
    """HTP re-planning of a trained model (TCEP and MGPTP have no weights)."""
    p.add_argument("--keep-ratio", type=float, help="HTP: share of frames TCEP keeps")
    p.add_argument("--merge-ratio", type=float, help="HTP: share of kept tokens MGPTP leaves")
    p.add_argument("--tcep-layer", type=int, help="HTP: block pair where TCEP prunes")
    p.add_argument("--mgptp-layer", type=int, help="HTP: block pair where MGPTP merges")
    p.add_argument(
        "--scoring",
        help="HTP: how TCEP chooses the kept frames (motion_graph, keyframe, uniform, random)",
    )


def _replan(model_cfg, args: argparse.Namespace) -> None:
    from htpose.model.pruning.config import replan

    replan(
        model_cfg, args.keep_ratio, args.merge_ratio, args.tcep_layer, args.mgptp_layer,
        args.scoring,
    )  # fmt: skip


def _load_cfg(args: argparse.Namespace):
    from htpose.config import apply_overrides, load_config

    cfg = load_config(args.config)
    overrides = list(args.set or [])
    if getattr(args, "steps", None):
        overrides.append(f"train.steps={args.steps}")
    if getattr(args, "data", None):
        overrides.append(f"data.clips={args.data}")
    if getattr(args, "seed", None) is not None:
        overrides.append(f"train.seed={args.seed}")
    return apply_overrides(cfg, overrides) if overrides else cfg


def _init_checkpoint(name: str | None) -> Path | None:
    """``--init-from``: a checkpoint path, or ``bundled`` for the model shipped with htpose."""
    if name == "bundled":
        from htpose.lift import bundled_model_path

        return Path(bundled_model_path())
    return None if name is None else Path(name)


def cmd_train(args: argparse.Namespace) -> int:
    from htpose.train import train

    cfg = _load_cfg(args)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else Path("runs") / cfg.name
    path = train(
        cfg,
        out,
        resume=args.resume,
        progress=not args.no_progress,
        stop_at=args.stop_at,
        device=args.device,
        minutes=args.minutes,
        init_from=_init_checkpoint(args.init_from),
    )
    if os.environ.get("RANK", "0") != "0":
        return 0
    log = out / "metrics.jsonl"
    lines = log.read_text().strip().splitlines() if log.exists() else []
    print(f"model: {path}")
    print(f"last log entry: {lines[-1] if lines else '{}'}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from htpose.aggregation import AGGREGATIONS
    from htpose.checkpoint import load_model
    from htpose.config import load_config
    from htpose.data.temporal import check_median_window
    from htpose.evaluate import check_sampling, evaluate
    from htpose.io import check_outputs
    from htpose.lift import bundled_model_path

    for agg in args.aggregate:
        if agg not in AGGREGATIONS:
            raise HtposeError(f"unknown aggregation {agg!r}; choose from {', '.join(AGGREGATIONS)}")
    if args.noise_from and not args.noisy:
        raise HtposeError("--noise-from needs --noisy")
    if args.json:
        sources = (args.data, args.checkpoint, args.keypoints, args.cameras, args.config)
        check_outputs([args.json], [p for p in sources if p])
    model, cfg, meta = load_model(
        args.checkpoint or bundled_model_path(),
        args.device,
        trust_pickle=args.trust_pickle,
        config=load_config(args.config) if args.config else None,
    )
    _replan(cfg.model, args)
    hyps = args.hypotheses or [cfg.diffusion.hypotheses]
    steps = args.steps or cfg.diffusion.sampling_steps
    check_sampling(cfg, hyps, steps, _flip(args), 1)  # before any data is read
    if args.median_2d is not None:
        check_median_window(args.median_2d)
    data = args.data or cfg.data.clips
    sequences = _evaluation_sequences(args, cfg, data)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = evaluate(
        model,
        cfg,
        sequences,
        hyps,
        steps,
        args.aggregate,
        _flip(args),
        args.seed,
        args.batch or cfg.eval.batch_windows,
        pck=all(s.valid is not None for s in sequences),  # MPI-INF-3DHP marks valid frames
        progress=not args.no_progress,
        overlap=args.overlap,
        median_2d=args.median_2d,
    )
    _report_evaluation(args, result, meta, hyps, steps, len(sequences), data)
    return 0


def _evaluation_sequences(args: argparse.Namespace, cfg, data: str) -> list:
    """The sequences ``htpose evaluate`` reads: split, subjects, views, cameras, noise."""
    from htpose.config import load_config
    from htpose.data.sources import load_sequences
    from htpose.evaluate import add_noise, noise_from_config

    camera_file, random_cameras = _camera_choice(args.cameras, cfg.data.camera_file)
    sequences = load_sequences(
        data,
        camera_file,
        args.split,
        args.subjects or cfg.data.test_subjects,
        args.views,
        args.fps,
        args.keypoints,
        args.allow_pickle,
        cfg.data.distortion,
        random_cameras,
        args.tilt,
    )
    if not sequences:
        raise HtposeError(f"{data}: no sequences to evaluate in split {args.split!r}")
    if args.noisy:
        noise_cfg = load_config(args.noise_from) if args.noise_from else cfg
        sequences = add_noise(sequences, noise_from_config(noise_cfg), args.seed)
    return sequences


def _report_evaluation(
    args: argparse.Namespace, result, meta: dict, hyps: list[int], steps: int, n: int, data: str
) -> None:
    """Print the tables and the calibration line; write ``--json`` when asked."""
    from htpose.calibration import calibration_report
    from htpose.checkpoint import uncertainty_scale
    from htpose.evaluate import result_json
    from htpose.io import write_json
    from htpose.lift import bundled_model_path

    input_kind = "noisy 2D" if args.noisy else ("detected 2D" if args.keypoints else "GT 2D")
    novel = _camera_choice(args.cameras, "")[1] is not None  # the one parse of --cameras
    rows = "camera kind" if novel else "action"
    for (agg, h), table in result.tables.items():
        print()
        title = f"== {agg}, H={h}, K={steps}, {input_kind}, {n} sequences =="
        print(table.format(title, rows))
    print(
        f"\n{result.frames} frames in {result.seconds:.1f} s of sampling: {result.fps:.1f} frames/s"
    )
    calib = calibration_report(result.mean_errors, result.spread, uncertainty_scale(meta))
    print(_coverage_line(calib, hyps[-1]))
    if not args.json:
        return
    run = {
        "checkpoint": str(args.checkpoint or bundled_model_path()),
        "data": str(data),
        "steps": steps,
        "input": input_kind,
        "flip_test": _flip(args),
        "train_step": meta.get("step"),
        "calibration": calib,
    }
    write_json(args.json, result_json(result, (args.aggregate[0], hyps[-1]), run))
    print(f"wrote {args.json}")


def _coverage_line(calib: dict, hypotheses: int) -> str:
    def fmt(cov: dict) -> str:
        return " / ".join(f"{v:.2f}" for v in cov.values())

    line = (
        f"uncertainty (H={hypotheses}): mean error {calib['error_mm']:.1f} mm, hypothesis "
        f"spread {calib['raw_spread_mm']:.1f} mm; share within 1/2/3 x spread: {fmt(calib['raw'])}"
    )
    if "calibrated" in calib:
        line += (
            f"; within 1/2/3 x calibrated radius ({calib['calibrated_radius_mm']:.1f} mm): "
            f"{fmt(calib['calibrated'])}"
        )
    return line


def cmd_calibrate(args: argparse.Namespace) -> int:
    from htpose.calibration import calibration_report, fit_scale
    from htpose.checkpoint import load_model, save_checkpoint
    from htpose.data.sources import load_sequences
    from htpose.evaluate import evaluate
    from htpose.io import OutputSet

    outputs = OutputSet([args.out], [args.checkpoint])
    model, cfg, meta = load_model(args.checkpoint)
    camera_file, random_cameras = _camera_choice(args.cameras, cfg.data.camera_file)
    sequences = load_sequences(
        cfg.data.clips, camera_file, args.split, cfg.data.test_subjects, [0],
        distortion=cfg.data.distortion, random_cameras=random_cameras,
    )  # fmt: skip
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    steps = args.steps or cfg.diffusion.sampling_steps
    result = evaluate(
        model, cfg, sequences, (args.hypotheses,), steps, ("mean",), True, 0,
        cfg.eval.batch_windows, progress=not args.no_progress,
    )  # fmt: skip
    scale = fit_scale(result.mean_errors, result.spread, args.level)
    report = calibration_report(result.mean_errors, result.spread, scale)
    meta = dict(meta)
    meta["uncertainty"] = {
        "scale": [round(float(v), 4) for v in scale],
        "level": args.level,
        "hypotheses": args.hypotheses,
        "steps": steps,
        "fitted_on": f"{args.split} split, cameras {args.cameras or 'h36m'}",
        "coverage_on_fit": report,
    }
    with outputs:
        save_checkpoint(outputs.stage(args.out), model, cfg, meta=meta)
    print(_coverage_line(report, args.hypotheses))
    print(f"per-joint factors {[round(float(v), 2) for v in scale]}; wrote {args.out}")
    return 0


def _camera_choice(value: str | None, default_file: str) -> tuple[str, tuple[int, int] | None]:
    """``--cameras``: a Human3.6M camera JSON, or ``random:N:SEED`` (the novel-camera
    protocol: N cameras per clip from the test kinds, drawn with SEED)."""
    if not value or not value.startswith("random"):
        return value or default_file, None
    parts = value.split(":")
    try:
        count, seed = int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        count = seed = -1
    if len(parts) != 3 or not 1 <= count <= 64 or not 0 <= seed < 2**32:
        raise HtposeError(
            f"--cameras {value!r}: expected random:N:SEED with N in 1..64 and SEED in 0..2^32-1"
        )
    return default_file, (count, seed)


def _print_comparison(doc: dict, baseline: str, pruned: str) -> None:
    rows = [
        ("params (M)", "params_m", "{:.3f}"),
        ("train step MACs, all (G)", "train_gmacs", "{:.3f}"),
        ("train step MACs, linear (G)", "train_gmacs_linear", "{:.3f}"),
        ("inference MACs, all (G)", "infer_gmacs", "{:.2f}"),
        ("inference MACs, linear (G)", "infer_gmacs_linear", "{:.2f}"),
        ("inference frames/s", "fps", "{:.2f}"),
        (f"train step s (batch {doc['train_batch']})", "train_step_s", "{:.4f}"),
        ("inference peak MiB", "infer_peak_mib", "{:.0f}"),
        ("train step peak MiB", "train_peak_mib", "{:.0f}"),
    ]
    print(
        f"H={doc['hypotheses']}, K={doc['steps']}, flip {doc['flip_test']}, one window; "
        f"train batch {doc['train_batch']}; timing: median of {doc['timing_runs']} alternating runs"
    )
    print(f"{'':30} {'baseline':>14} {'pruned':>14}")
    for label, key, fmt in rows:
        b, p = doc["baseline"][key], doc["pruned"][key]
        if b is None:
            continue
        print(f"{label:30} {fmt.format(b):>14} {fmt.format(p):>14}")
    print(
        f"inference MACs reduction: {doc['infer_macs_reduction']:.1%} all, "
        f"{doc['infer_macs_reduction_linear']:.1%} linear"
    )
    print(
        f"training MACs reduction:  {doc['train_macs_reduction']:.1%} all, "
        f"{doc['train_macs_reduction_linear']:.1%} linear"
    )
    if doc["speedup"]:
        print(f"inference speed-up:       {doc['speedup']:.2f}x")
    if doc["train_speedup"]:
        print(f"training step speed-up:   {doc['train_speedup']:.2f}x")
    print(f"baseline {baseline}; pruned {pruned}")


def cmd_profile(args: argparse.Namespace) -> int:
    from htpose.config import apply_overrides, load_config
    from htpose.profile import compare, profile_config

    if args.baseline or args.pruned:
        if not (args.baseline and args.pruned):
            raise HtposeError("--baseline and --pruned go together")
        cfgs = [load_config(p) for p in (args.baseline, args.pruned)]
        if args.set:
            cfgs = [apply_overrides(c, args.set) for c in cfgs]
        if cfgs[0].model.frames != cfgs[1].model.frames:
            raise HtposeError("--baseline and --pruned must have the same model.frames")
        _replan(cfgs[1].model, args)
        runs = 5 if args.time is None else args.time
        doc = compare(
            cfgs[0], cfgs[1], args.hypotheses, args.steps_k, args.train_batch, runs, args.device
        )
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            _print_comparison(doc, args.baseline, args.pruned)
        return 0
    if not args.config:
        raise HtposeError("give --config CFG, or --baseline CFG --pruned CFG")
    cfg = _load_cfg(args)
    _replan(cfg.model, args)
    prof = profile_config(
        cfg, args.hypotheses, args.steps_k, None, args.train_batch, args.time or 0
    )
    if args.json:
        print(json.dumps(prof.as_dict(), indent=2))
        return 0
    h = args.hypotheses or cfg.diffusion.hypotheses
    k = args.steps_k or cfg.diffusion.sampling_steps
    m = cfg.model
    print(f"config {args.config}: frames {m.frames}, width {m.width}, depth {m.depth}")
    print(f"{'params':34} {prof.params_m:10.3f} M")
    train_label = f"train step MACs (batch {args.train_batch})"
    print(
        f"{train_label:34} {prof.train_gmacs:10.3f} G all, {prof.train_gmacs_linear:.3f} G linear"
    )
    infer_label = f"inference MACs (H={h}, K={k})"
    print(
        f"{infer_label:34} {prof.infer_gmacs:10.3f} G all, {prof.infer_gmacs_linear:.3f} G linear"
    )
    if prof.fps is not None:
        print(f"{'inference speed':34} {prof.fps:10.1f} frames/s (median of {args.time})")
    return 0


def _warn_if_implausible(keypoints, advice: str) -> None:
    """One warning line when the 2D is unlike one human body (after the work, so that an
    error stays the only line of a failing command)."""
    from htpose.data.keypoints import IMPLAUSIBLE, implausibility

    score = implausibility(keypoints.pixels, keypoints.scores)
    if score > IMPLAUSIBLE:
        print(
            f"htpose: warning: this 2D is implausible for the {keypoints.source} layout (limb "
            f"lengths vary or disagree left/right by {score:.2f}); {advice}",
            file=sys.stderr,
        )


def _lift_targets(args: argparse.Namespace) -> list[Path]:
    """Every file ``lift``/``video`` will write, checked before any work."""
    out = Path(args.output)
    if out.suffix.lower() != ".npz":
        raise HtposeError(f"-o must name a .npz file (got {out.name!r}); add --json/--csv too")
    if args.render and Path(args.render).suffix.lower() not in (".gif", ".mp4"):
        raise HtposeError(f"cannot render to {Path(args.render).name!r}; use a .gif or .mp4 file")
    if args.bvh and Path(args.bvh).suffix.lower() != ".bvh":
        raise HtposeError(f"--bvh must name a .bvh file, got {Path(args.bvh).name!r}")
    targets = [out]
    targets += [out.with_suffix(".json")] if args.json else []
    targets += [out.with_suffix(".csv")] if args.csv else []
    targets += [Path(args.render)] if args.render else []
    targets += [Path(args.bvh)] if args.bvh else []
    return targets


def _write_outputs(result, outputs, targets: list[Path], args, video=None, extra=None) -> None:
    """Write a lift's files all or none (``outputs`` is the command's OutputSet); ``extra``
    ``{path: write(staged_path)}`` joins the same all-or-none set."""
    if args.world or args.bvh:
        result.add_world()
    with outputs:
        for target, write in (extra or {}).items():
            write(outputs.stage(target))
        for target in targets:
            if target.suffix.lower() == ".bvh":
                from htpose.bvh import write_bvh

                write_bvh(outputs.stage(target), result.joints_world, result.fps)
            elif target.suffix.lower() in (".gif", ".mp4"):
                from htpose.render import render_result

                render_result(result, outputs.stage(target), view=args.view, video=video)
            else:
                result.save(outputs.stage(target))


def cmd_lift(args: argparse.Namespace) -> int:
    import time

    from htpose.data.keypoints import read_keypoints
    from htpose.lift import DEFAULT_FPS, LIFT_AGGREGATIONS, Lifter

    if args.aggregate not in LIFT_AGGREGATIONS:
        raise HtposeError(
            f"aggregation {args.aggregate!r} needs ground truth; choose from "
            f"{', '.join(LIFT_AGGREGATIONS)}"
        )
    from htpose.io import OutputSet

    targets = _lift_targets(args)
    inputs = [args.input] + ([args.checkpoint] if args.checkpoint else [])
    outputs = OutputSet(targets, inputs)  # refuses to replace an input, before any work
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    keypoints = read_keypoints(args.input, args.format, args.layout)
    fps = args.fps if args.fps is not None else keypoints.fps
    assumed_fps = fps is None
    fps = DEFAULT_FPS if assumed_fps else fps
    size = (args.width, args.height) if args.width and args.height else None
    if (args.width is None) != (args.height is None):
        raise HtposeError("give both --width and --height")
    tick = time.perf_counter()
    lifter = Lifter.from_pretrained(args.checkpoint, args.device)
    _replan(lifter.config.model, args)
    result = lifter(
        keypoints,
        image_size=size,
        fps=fps,
        hypotheses=args.hypotheses,
        steps=args.steps,
        aggregate=args.aggregate,
        flip=_flip(args),
        batch=args.batch,
        seed=args.seed,
        threshold=args.threshold,
        focal=args.focal,
        progress=not args.no_progress,
        overlap=args.overlap,
        start_frame=args.start_frame,
        median_2d=args.median_2d,
        body_height=args.body_height,
    )
    _write_outputs(result, outputs, targets, args)
    if assumed_fps:
        _note_assumed_fps("the input", " (pass --fps)")
    _warn_if_implausible(keypoints, "check --layout")
    _print_lift_summary(result, keypoints.source, time.perf_counter() - tick, targets)
    return 0


def _print_lift_summary(result, source: str, seconds: float, written: list) -> None:
    """Two lines: what was lifted and how fast; the mean uncertainty and the files."""
    info = result.info
    print(
        f"lifted {len(result)} frames ({source}, {result.fps:g} fps, "
        f"{result.image_size[0]}x{result.image_size[1]}) with H={info['hypotheses']}, "
        f"K={info['steps']}, {info['aggregate']}: {info['frames_per_second']} frames/s "
        f"({seconds:.1f} s in all); {info['filled_joints']} joint positions filled in"
    )
    print(
        f"mean {result.uncertainty_label} {1000 * float(result.uncertainty.mean()):.1f} mm; "
        f"wrote {', '.join(str(p) for p in written)}"
    )


def cmd_video(args: argparse.Namespace) -> int:
    import time

    from htpose.io import OutputSet
    from htpose.lift import DEFAULT_FPS, Lifter
    from htpose.video.decode import probe
    from htpose.video.pipeline import detect_video

    targets = _lift_targets(args)
    if args.save_2d and Path(args.save_2d).suffix.lower() != ".npz":
        raise HtposeError(f"--save-2d must name a .npz file, got {Path(args.save_2d).name!r}")
    outputs = OutputSet(
        targets + ([Path(args.save_2d)] if args.save_2d else []),
        [args.input] + ([args.checkpoint] if args.checkpoint else []),
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    lifter = Lifter.from_pretrained(args.checkpoint, args.device)  # a bad model fails first
    _replan(lifter.config.model, args)
    info = probe(args.input)  # not a video: fails here, before MediaPipe loads
    keep_every = _render_step(args, info)
    detector = _video_detector(args)
    try:
        found = detect_video(info, detector, args.person, args.max_people, keep_every,
                             args.max_frames, progress=not args.no_progress)  # fmt: skip
    finally:
        detector.close()
    fps = found.info.fps or DEFAULT_FPS
    tick = time.perf_counter()
    result = lifter(found.keypoints, fps=fps, hypotheses=args.hypotheses, steps=args.steps,
                    aggregate=args.aggregate, flip=_flip(args), batch=args.batch,
                    seed=args.seed, threshold=args.threshold, focal=args.focal,
                    progress=not args.no_progress, overlap=args.overlap,
                    median_2d=args.median_2d, body_height=args.body_height)  # fmt: skip
    found.seconds["lift"] = time.perf_counter() - tick
    result.info["video"] = _video_info(found)
    tick = time.perf_counter()
    extra = (
        {Path(args.save_2d): lambda path: _save_2d(path, found, result.fps)}
        if args.save_2d
        else None
    )
    _write_outputs(result, outputs, targets, args, found.thumbnails or None, extra)
    found.seconds["write"] = time.perf_counter() - tick
    _warn_if_implausible(found.keypoints, "the detector may have mixed people up (--person)")
    if found.info.fps is None:
        _note_assumed_fps("the video")
    _report_video(found, result, [*targets, *(extra or {})], args.max_frames)
    return 0


def _note_assumed_fps(what: str, hint: str = "") -> None:
    """Printed after the work, so that a refused input still gets exactly one error line."""
    from htpose.lift import DEFAULT_FPS

    print(f"htpose: note: {what} has no frame rate; {DEFAULT_FPS:g} fps was assumed{hint}",
          file=sys.stderr)  # fmt: skip


def _video_detector(args: argparse.Namespace):
    from htpose.video.detect import DETECTORS

    return DETECTORS[args.detector](complexity=args.complexity)


def _render_step(args: argparse.Namespace, info) -> int:
    """Keep a thumbnail of every this many frames for an overlay render (0: no render)."""
    if not args.render:
        return 0
    from htpose.render import playback

    length = info.expected_frames or 10_000
    if args.max_frames:
        length = min(length, args.max_frames)
    step, _ = playback(info.fps or 30.0, length, 200, Path(args.render).suffix.lower() == ".gif")
    return step


def _video_info(found) -> dict:
    import numpy as np

    missing = np.flatnonzero(~found.found)
    return {
        "file": str(found.info.path),
        "frames": int(len(found.found)),
        "expected_frames": found.info.expected_frames,
        "frames_without_person": missing.tolist(),
        "people_seen": found.people_seen,
        "stage_seconds": {k: round(v, 3) for k, v in found.seconds.items()},
    }


def _save_2d(path: Path, found, fps: float) -> None:
    import numpy as np

    kp = found.keypoints
    with open(path, "wb") as fh:
        np.savez_compressed(fh, keypoints=kp.pixels.astype(np.float32),
                            scores=kp.scores.astype(np.float32), fps=np.float64(fps),
                            width=kp.width, height=kp.height)  # fmt: skip


def _report_video(found, result, written: list[Path], max_frames: int | None) -> None:
    n = len(found.found)
    missing = int((~found.found).sum())
    expected = found.info.expected_frames
    if expected and n < 0.9 * expected and n != max_frames:
        print(f"htpose: warning: decoded {n} of about {expected} frames; the stream may be "
              "damaged or cut short", file=sys.stderr)  # fmt: skip
    if missing:
        print(f"htpose: warning: the person was not found in {missing} of {n} frames; those "
              "are filled in and flagged in 'filled' (info.video.frames_without_person)",
              file=sys.stderr)  # fmt: skip
    rates = ", ".join(f"{stage} {n / s:.1f} frames/s" if s > 0 else f"{stage} -"
                      for stage, s in found.seconds.items())  # fmt: skip
    print(f"{n} frames ({found.info.width}x{found.info.height}, {result.fps:g} fps), "
          f"{found.people_seen} people seen; {rates}")  # fmt: skip
    print(f"wrote {', '.join(str(p) for p in written)}")


def cmd_demo(args: argparse.Namespace) -> int:
    import time
    from importlib import resources

    import numpy as np

    from htpose.data.keypoints import read_keypoints
    from htpose.io import open_npz, read_npz_array
    from htpose.lift import Lifter

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    samples = Path(str(resources.files("htpose") / "samples"))
    keypoints = read_keypoints(samples / "boxing_coco.json")
    with open_npz(samples / "boxing_3d.npz") as archive:
        truth = {k: read_npz_array(archive, k, "demo sample") for k in archive.files}
    size, fps = (int(truth["width"]), int(truth["height"])), float(truth["fps"])
    print(
        f"demo: {len(keypoints)} frames of boxing (CMU motion capture) projected to COCO-17 "
        f"keypoint results with detector-like jitter, {fps:g} fps, {size[0]}x{size[1]} image"
    )
    tick = time.perf_counter()
    lifter = Lifter.from_pretrained(args.checkpoint)
    result = lifter(keypoints, image_size=size, fps=fps, hypotheses=args.hypotheses,
                    steps=args.steps, progress=not args.no_progress)  # fmt: skip
    seconds = time.perf_counter() - tick
    err = np.linalg.norm(result.joints_3d - truth["joints_3d"], axis=-1) * 1000
    out = Path(args.out)
    written = [result.save(out / "boxing_3d.npz")]
    p = lifter.config.model.pruning
    model = "HTP" if p.tcep else "unpruned"
    print(
        f"model: {model} denoiser, {sum(x.numel() for x in lifter.model.parameters()) / 1e6:.2f} M "
        f"params, H={args.hypotheses} hypotheses x K={result.info['steps']} DDIM steps, "
        f"test-time flip {result.info['flip']}"
    )
    print(
        f"3D: {len(result)} frames in {seconds:.1f} s ({len(result) / seconds:.1f} frames/s on "
        f"this machine); error against the motion capture {err.mean():.1f} mm MPJPE; "
        f"{result.uncertainty_label} {1000 * result.uncertainty.mean():.1f} mm "
        f"(wrists {1000 * result.uncertainty[:, [13, 16]].mean():.1f} mm)"
    )
    if not args.no_render:
        from htpose.render import plot_uncertainty, render_result

        written.append(render_result(result, out / "boxing_3d.gif", max_frames=args.max_frames))
        written.append(plot_uncertainty(result, out / "boxing_uncertainty.png"))
    print(f"wrote {', '.join(str(w) for w in written)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from htpose.checkpoint import load_model
    from htpose.export import check_onnx, export_onnx
    from htpose.io import check_outputs
    from htpose.lift import bundled_model_path

    check_outputs([args.onnx], [args.checkpoint or bundled_model_path()])
    model, cfg, _ = load_model(args.checkpoint or bundled_model_path())
    path = export_onnx(model, args.onnx, args.opset)
    print(f"wrote {path} (one denoising step, frames {cfg.model.frames}, batch dynamic)")
    if not args.no_check:
        diff = check_onnx(model, path)
        print(f"onnxruntime vs PyTorch: max abs difference {diff:.2e}")
        if diff > 1e-3:
            raise HtposeError(f"the export disagrees with PyTorch by {diff:.2e}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from htpose.io import OutputSet
    from htpose.lift import load_result
    from htpose.render import plot_uncertainty, render_result

    if Path(args.output).suffix.lower() not in (".gif", ".mp4"):
        raise HtposeError(f"cannot render to {Path(args.output).name!r}; use a .gif or .mp4 file")
    written = [Path(args.output)] + ([Path(args.uncertainty)] if args.uncertainty else [])
    outputs = OutputSet(written, [args.result])
    result = load_result(args.result)
    with outputs:
        render_result(result, outputs.stage(written[0]), max_frames=args.max_frames, view=args.view)
        if args.uncertainty:
            plot_uncertainty(result, outputs.stage(written[1]))
    print(f"rendered {len(result)} frames; wrote {', '.join(str(p) for p in written)}")
    return 0


def cmd_convert_h36m(args: argparse.Namespace) -> int:
    from htpose.data.h36m import convert_h36m

    if not args.allow_pickle:
        raise HtposeError(
            "Human3.6M's files are pickles, which can run code when read; pass --allow-pickle "
            "to convert files you trust (nothing was read)"
        )
    for path in convert_h36m(args.positions_3d, args.out, args.positions_2d, allow_pickle=True):
        print(f"wrote {path}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with usage mistakes reported in the same one-line form as every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"htpose: error: {message} (see '{self.prog} --help')\n")


def _add_lift_options(p: argparse.ArgumentParser) -> None:
    """Options ``lift`` and ``video`` share: sampling, outputs, pictures."""
    p.add_argument("--checkpoint", help="a .safetensors checkpoint (default: the bundled model)")
    p.add_argument("--hypotheses", type=_positive_int, default=5)
    p.add_argument(
        "--steps", type=_positive_int, help="DDIM steps K (default: the model's sampling_steps)"
    )
    p.add_argument("--aggregate", default="mean", help="mean or jpma")
    p.add_argument(
        "--threshold",
        type=float,
        default=0.3,
        help="keypoints scored below this are filled in from neighbouring frames",
    )
    p.add_argument("--focal", type=float, help="focal length in pixels (default 1.15 x size)")
    p.add_argument(
        "--overlap",
        type=_unit_fraction,
        help="share by which windows overlap, blended (default: the model's eval.overlap)",
    )
    p.add_argument(
        "--median-2d",
        type=_nonnegative_int,
        metavar="FRAMES",
        help="running median of the 2D over this many model frames against detector jitter "
        "(odd; 0: off; default: the model's eval.median_2d)",
    )
    p.add_argument(
        "--body-height",
        type=_body_height,
        metavar="METRES",
        help="the person's standing height, when known: the result is scaled to it (one view "
        "cannot tell a small near body from a large far one)",
    )
    _add_flip_args(p)
    p.add_argument("--batch", type=_positive_int, default=16, help="windows per model call")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=_positive_int, help="CPU threads")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--json", action="store_true", help="also write OUTPUT.json")
    p.add_argument("--csv", action="store_true", help="also write OUTPUT.csv")
    p.add_argument("--render", help="also draw the result to a .gif or .mp4")
    p.add_argument("--view", type=_view, default=(12.0, -70.0), help="3D view ELEV,AZIM in degrees")
    p.add_argument(
        "--world",
        action="store_true",
        help="also store joints_world: absolute positions, gravity up (z), floor at 0",
    )
    p.add_argument("--bvh", help="also write the motion as a .bvh file (Y up, cm) for Blender")
    p.add_argument("--no-progress", action="store_true")
    _add_replan_args(p)


def _add_train_command(sub) -> None:
    p = sub.add_parser("train", help="train a denoiser from a YAML config")
    p.add_argument("--config", required=True, help="YAML file, e.g. configs/cmu_small.yaml")
    p.add_argument("--out", help="run folder (default runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.safetensors")
    p.add_argument("--steps", type=_positive_int, help="override train.steps")
    p.add_argument(
        "--stop-at",
        type=_positive_int,
        metavar="STEP",
        help="stop after STEP (checkpointed); continue later with --resume",
    )
    p.add_argument(
        "--init-from",
        metavar="CHECKPOINT",
        help="start from these weights ('bundled' for the bundled model): fine-tune it, or "
        "grow it by model.pose_context (zero-initialised); fresh optimizer and schedule",
    )
    p.add_argument("--data", help="override data.clips (a clip collection .npz)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config value")
    p.add_argument(
        "--seed", type=_seed, help="override train.seed (runs are reproducible per seed)"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda (under torchrun: one GPU per rank)")
    p.add_argument(
        "--minutes",
        type=float,
        help="size a new run to end within this many minutes (sets train.steps from the "
        "first steps' speed)",
    )
    p.add_argument("--threads", type=_positive_int, help="CPU threads")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)


def _add_evaluation_data_args(p: argparse.ArgumentParser) -> None:
    """What to evaluate on: the data, its cameras and split, the windows' overlap."""
    p.add_argument("--data", help="clip collection, Human3.6M data_3d_*.npz or 3DHP file")
    p.add_argument("--keypoints", help="2D detections (Human3.6M data_2d_*.npz or converted)")
    p.add_argument(
        "--cameras",
        help="Human3.6M camera JSON (default: the training config's), or random:N:SEED for the "
        "novel-camera protocol (N random cameras per clip, reported per kind of camera)",
    )
    p.add_argument(
        "--overlap",
        type=_unit_fraction,
        help="share by which windows overlap, blended (default: the config's eval.overlap)",
    )
    p.add_argument(
        "--median-2d",
        type=_nonnegative_int,
        metavar="FRAMES",
        help="running median of the 2D over this many frames, as lifting applies it "
        "(odd; 0: off; default: the config's eval.median_2d)",
    )
    p.add_argument(
        "--split", default="test", help="split of the collection, or 'all' (default test)"
    )
    p.add_argument(
        "--subjects", type=_str_list, help="camera subjects for clip collections (default S9,S11)"
    )
    p.add_argument("--views", type=_int_list, help="camera indices per subject (default all 4)")
    p.add_argument("--fps", type=float, help="frame rate of the data (overrides its .json)")


def _add_evaluate_command(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a checkpoint on labelled data")
    p.add_argument("--checkpoint", help="a .safetensors checkpoint (default: the bundled model)")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="admit a torch.save checkpoint (read with weights_only=True; needs --config)",
    )
    p.add_argument("--config", help="model config of a --trust-pickle checkpoint")
    _add_evaluation_data_args(p)
    p.add_argument("--hypotheses", type=_int_list, help="H, or several: 1,5,20 (sampled once)")
    p.add_argument("--steps", type=_positive_int, help="DDIM steps K")
    p.add_argument(
        "--aggregate",
        type=_str_list,
        default=["mean"],
        help="mean|jpma|pbest|jbest, comma-separated",
    )
    p.add_argument(
        "--noisy", action="store_true", help="perturb the 2D with the detector-noise model"
    )
    p.add_argument(
        "--tilt",
        type=_tilt_angle,
        default=0.0,
        metavar="DEG",
        help="rotate every clip by DEG degrees about a horizontal axis first (90: lying, "
        "180: upside down), the pose-augmentation check",
    )
    p.add_argument(
        "--noise-from",
        metavar="CONFIG",
        help="with --noisy: the data.noise of this YAML config (default: the checkpoint's), "
        "so models trained with different noise are compared under the same",
    )
    _add_flip_args(p)
    p.add_argument(
        "--allow-pickle", action="store_true", help="allow reading pickled Human3.6M/3DHP files"
    )
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--batch", type=_positive_int, help="windows per batch")
    p.add_argument("--threads", type=_positive_int, help="CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", help="write the results as JSON here")
    p.add_argument("--no-progress", action="store_true")
    _add_replan_args(p)
    p.set_defaults(func=cmd_evaluate)


def _add_lift_command(sub) -> None:
    p = sub.add_parser(
        "lift", help="lift your 2D keypoints (COCO, OpenPose, MediaPipe, YOLO, npy) to 3D"
    )
    p.add_argument("input", help="keypoints file, or a folder of OpenPose .json / YOLO .txt")
    p.add_argument("-o", "--output", required=True, help="result .npz")
    p.add_argument(
        "--format",
        choices=("coco", "openpose", "mediapipe", "yolo", "numpy"),
        help="input format (default: detected)",
    )
    p.add_argument(
        "--layout",
        choices=("coco17", "body25", "body25b", "coco18", "halpe26", "wholebody133",
                 "mediapipe33", "h36m17"),
        help="keypoint layout (default: from the file; 25 points: decided from the data)",
    )  # fmt: skip
    p.add_argument("--width", type=_positive_int, help="image width in pixels")
    p.add_argument("--height", type=_positive_int, help="image height in pixels")
    p.add_argument("--fps", type=float, help="input frame rate (default: the file's, else 30)")
    p.add_argument(
        "--start-frame",
        type=_nonnegative_int,
        default=0,
        help="where this file begins in a longer recording (pieces then match the whole)",
    )
    _add_lift_options(p)
    p.set_defaults(func=cmd_lift)


def _add_video_command(sub) -> None:
    p = sub.add_parser("video", help="detect, track and lift one person in a video file")
    p.add_argument("input", help="a video file (mp4, mov, avi, mkv, ... anything ffmpeg reads)")
    p.add_argument("-o", "--output", required=True, help="result .npz")
    p.add_argument(
        "--person",
        type=_person,
        default="largest",
        help="who to follow: largest, center, or N (the N-th person from the left, from 0)",
    )
    p.add_argument(
        "--max-people", type=_positive_int, default=4, help="people searched for when choosing"
    )
    p.add_argument("--detector", choices=("mediapipe",), default="mediapipe")
    p.add_argument(
        "--complexity", type=int, choices=(0, 1, 2), default=1, help="MediaPipe model size"
    )
    p.add_argument("--max-frames", type=_positive_int, help="stop after this many frames")
    p.add_argument("--save-2d", help="also write the detected 2D as .npz (htpose lift reads it)")
    _add_lift_options(p)
    p.set_defaults(func=cmd_video)


def _add_demo_command(sub) -> None:
    p = sub.add_parser("demo", help="lift the bundled boxing sample end to end and draw it")
    p.add_argument("--out", default="htpose_demo", help="folder for the result and pictures")
    p.add_argument("--checkpoint", help="a .safetensors checkpoint (default: the bundled model)")
    p.add_argument("--hypotheses", type=_positive_int, default=5)
    p.add_argument(
        "--steps", type=_positive_int, help="DDIM steps K (default: the model's sampling_steps)"
    )
    p.add_argument("--max-frames", type=_positive_int, default=60, help="frames drawn")
    p.add_argument("--no-render", action="store_true")
    p.add_argument("--threads", type=_positive_int, help="CPU threads")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)


def _add_export_command(sub) -> None:
    p = sub.add_parser("export", help="export the denoiser (one step) to ONNX")
    p.add_argument("--onnx", required=True, help="output .onnx file")
    p.add_argument("--checkpoint", help="a .safetensors checkpoint (default: the bundled model)")
    p.add_argument("--opset", type=_opset, default=18, help="ONNX opset, 11 to 20")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    p.set_defaults(func=cmd_export)


def _add_render_command(sub) -> None:
    p = sub.add_parser("render", help="draw a lift result (.npz) to a .gif or .mp4")
    p.add_argument("result", help="a .npz written by htpose lift")
    p.add_argument("-o", "--output", required=True, help=".gif or .mp4")
    p.add_argument(
        "--max-frames",
        type=_positive_int,
        default=200,
        help="draw at most this many frames (evenly spaced)",
    )
    p.add_argument("--uncertainty", help="also plot per-joint uncertainty to this .png")
    p.add_argument("--view", type=_view, default=(12.0, -70.0), help="3D view ELEV,AZIM in degrees")
    p.set_defaults(func=cmd_render)


def _add_profile_command(sub) -> None:
    p = sub.add_parser("profile", help="params, MACs and speed of a config, or of two side by side")
    p.add_argument("--config", help="one config")
    p.add_argument("--baseline", help="baseline config (with --pruned: side-by-side comparison)")
    p.add_argument("--pruned", help="pruned config")
    p.add_argument("--device", default="cpu", help="device for timing (cpu, cuda)")
    p.add_argument("--hypotheses", type=_positive_int)
    p.add_argument("--steps", dest="steps_k", type=_positive_int, help="DDIM steps K")
    p.add_argument("--train-batch", type=_positive_int, default=1)
    p.add_argument(
        "--time", type=int, default=0, metavar="RUNS", help="also time inference (median of RUNS)"
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.add_argument("--json", action="store_true")
    _add_replan_args(p)
    p.set_defaults(func=cmd_profile)


def _add_calibrate_command(sub) -> None:
    p = sub.add_parser(
        "calibrate", help="fit what the uncertainty means on val; write a calibrated checkpoint"
    )
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="the calibrated checkpoint (.safetensors)")
    p.add_argument("--split", default="val", help="split to fit on (default val)")
    p.add_argument(
        "--cameras", default="random:4:1", help="h36m camera JSON or random:N:SEED (default)"
    )
    p.add_argument("--hypotheses", type=_positive_int, default=5, help="H, as lifting uses")
    p.add_argument(
        "--steps", type=_positive_int, help="DDIM steps K (default: the model's sampling_steps)"
    )
    p.add_argument("--level", type=float, default=0.68, help="coverage of the radius")
    p.add_argument("--threads", type=_positive_int)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_calibrate)


def _add_convert_h36m_command(sub) -> None:
    p = sub.add_parser("convert-h36m", help="convert pickled Human3.6M files to pickle-free ones")
    p.add_argument("positions_3d", help="data_3d_h36m.npz")
    p.add_argument("--positions-2d", help="data_2d_h36m_<detector>.npz")
    p.add_argument("--out", required=True, help="output clip collection .npz")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="read the pickled inputs (they can run code: only for files you trust)",
    )
    p.set_defaults(func=cmd_convert_h36m)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="htpose", description="3D human pose lifting by diffusion, with HTP.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train_command(sub)
    _add_evaluate_command(sub)
    _add_lift_command(sub)
    _add_video_command(sub)
    _add_demo_command(sub)
    _add_export_command(sub)
    _add_render_command(sub)
    _add_profile_command(sub)
    _add_calibrate_command(sub)
    _add_convert_h36m_command(sub)
    for command in sub.choices.values():
        command.add_argument(
            "--max-memory",
            metavar="SIZE",
            help="memory budget for sizes that input controls, e.g. 4G (default: half the RAM)",
        )
    return parser


def _one_line(exc: BaseException) -> str:
    """The message on one line: some library messages (numpy's) span several."""
    return " ".join(str(exc).split())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from htpose import budget

        budget.set_limit(budget.parse_size(args.max_memory) if args.max_memory else None)
        return args.func(args)
    except HtposeError as exc:
        print(f"htpose: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("htpose: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line unless debugging
        if os.environ.get("HTPOSE_DEBUG"):
            raise
        print(
            f"htpose: internal error: {type(exc).__name__}: {_one_line(exc)} "
            "(set HTPOSE_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
