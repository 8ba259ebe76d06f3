"""End-to-end lifting speed of a model (default: the bundled one) on users' keypoints.

Times ``htpose lift``'s work, from a COCO keypoints file to the result in memory (reading,
filling, resampling, sampling H hypotheses x K steps with flip, aggregation, uncertainty,
root), for each H asked, alternating the settings, medians of several runs. Input: the
bundled 30 fps boxing sample (240 frames), or ``--keypoints`` with ``--width/--height/--fps``.
Prints a Markdown table for benchmarks/RESULTS.md.

    python benchmarks/lift_speed.py --hypotheses 5,20
"""

from __future__ import annotations

import argparse
import statistics
import time
from importlib import resources
from pathlib import Path

import torch

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
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    path = Path(args.keypoints or resources.files("htpose") / "samples" / "boxing_coco.json")
    lifter = Lifter.from_pretrained(args.checkpoint)
    hyps = [int(h) for h in args.hypotheses.split(",")]

    def run(h: int) -> tuple[float, int]:
        tick = time.perf_counter()
        track = read_keypoints(path)
        result = lifter(track, (args.width, args.height), args.fps, hypotheses=h,
                        steps=args.steps)  # fmt: skip
        return time.perf_counter() - tick, len(result)

    for h in hyps:
        run(h)  # warm-up
    times: dict[int, list[float]] = {h: [] for h in hyps}
    frames = 0
    for _ in range(args.runs):
        for h in hyps:
            seconds, frames = run(h)
            times[h].append(seconds)
    cfg = lifter.config
    print(
        f"\nmodel {lifter.name} ({'HTP' if cfg.model.pruning.tcep else 'unpruned'}, "
        f"{cfg.model.frames} frames, width {cfg.model.width}); input {path.name}: {frames} "
        f"frames at {args.fps:g} fps; K={args.steps}, test-time flip; median of {args.runs} "
        f"alternating runs; torch threads {torch.get_num_threads()}\n"
    )
    print("| H | seconds | video frames per second (end to end) |")
    print("| --- | --- | --- |")
    for h in hyps:
        med = statistics.median(times[h])
        print(f"| {h} | {med:.2f} | {frames / med:.1f} |")


if __name__ == "__main__":
    main()
