"""End-to-end lifting speed of a model (default: the bundled one) on users' keypoints.

Times ``htpose lift``'s work, from a COCO keypoints file to the result in memory (reading,
filling, resampling, sampling H hypotheses x K steps with flip, aggregation, uncertainty,
root), for each setting asked (H x flip mode x sequences per denoiser call), alternating the
settings, medians of several runs. Input: the bundled 30 fps boxing sample (240 frames), or
``--keypoints`` with ``--width/--height/--fps``. Prints a Markdown table for
benchmarks/RESULTS.md.

    python benchmarks/lift_speed.py --hypotheses 5,20 --flip average,split --rows 32,100000
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from importlib import resources
from pathlib import Path

import torch

import htpose.diffusion.pipeline as pipeline
from htpose.data.keypoints import read_keypoints
from htpose.lift import Lifter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="default: the bundled model")
    parser.add_argument("--keypoints", help="default: the bundled boxing sample")
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--height", type=int, default=1002)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--hypotheses", default="5,20")
    parser.add_argument("--steps", type=int, help="DDIM steps K (default: the model's own)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--flip", default="average", help="flip modes: average,split,none")
    parser.add_argument("--overlap", default="", help="e.g. 0,0.5 (default: the model's)")
    parser.add_argument(
        "--rows", default=str(pipeline.ROWS_PER_CALL), help="sequences per denoiser call"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    path = Path(args.keypoints or resources.files("htpose") / "samples" / "boxing_coco.json")
    lifter = Lifter.from_pretrained(args.checkpoint)
    overlaps = [float(o) for o in args.overlap.split(",")] if args.overlap else [None]
    settings = list(itertools.product(
        [int(h) for h in args.hypotheses.split(",")], args.flip.split(","),
        [int(r) for r in args.rows.split(",")], overlaps,
    ))  # fmt: skip

    def run(setting: tuple[int, str, int, float | None]) -> tuple[float, int]:
        h, flip, rows, overlap = setting
        pipeline.ROWS_PER_CALL = rows
        tick = time.perf_counter()
        track = read_keypoints(path)
        result = lifter(track, (args.width, args.height), args.fps, hypotheses=h,
                        steps=args.steps, flip=flip, overlap=overlap)  # fmt: skip
        return time.perf_counter() - tick, len(result)

    for setting in settings:
        run(setting)  # warm-up
    times: dict[tuple, list[float]] = {s: [] for s in settings}
    frames = 0
    for _ in range(args.runs):
        for setting in settings:
            seconds, frames = run(setting)
            times[setting].append(seconds)
    cfg = lifter.config
    print(
        f"\nmodel {lifter.name} ({'HTP' if cfg.model.pruning.tcep else 'unpruned'}, "
        f"{cfg.model.frames} frames, width {cfg.model.width}); input {path.name}: {frames} "
        f"frames at {args.fps:g} fps; K={args.steps or cfg.diffusion.sampling_steps}; "
        f"median of {args.runs} alternating runs; "
        f"torch threads {torch.get_num_threads()}\n"
    )
    print("| H | flip | sequences per call | overlap | seconds | video frames per second |")
    print("| --- | --- | --- | --- | --- | --- |")
    for setting in settings:
        med = statistics.median(times[setting])
        h, flip, rows, overlap = setting
        overlap = cfg.eval.overlap if overlap is None else overlap
        print(f"| {h} | {flip} | {rows} | {overlap:g} | {med:.2f} | {frames / med:.1f} |")


if __name__ == "__main__":
    main()
