"""How long TCEP's frame plan takes: the greedy pick loop as torch ops against the NumPy loop.

The motion-graph choice picks frames one at a time (``count - 2`` passes), so its cost is
per-pass overhead, not arithmetic. As torch ops each pass is a handful of tiny kernels: on a
GPU that is several launches a pass, which made the pruned model slower than the unpruned
one at one window (benchmarks/RESULTS.md, section 2). Eagerly the loop now runs in NumPy on
the host (the torch loop stays for tracing, and on a GPU for many windows). Both are timed
side by side here, with the scoring that precedes them, on the device given:

    python benchmarks/tcep_plan_speed.py --threads 1
    python benchmarks/tcep_plan_speed.py --device cuda
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch

from htpose.model.pruning.tcep import (
    _greedy_spread_numpy,
    _greedy_spread_torch,
    greedy_spread,
    motion_graph_scores,
)


def best_ms(fn, device: torch.device, runs: int) -> float:
    """Fastest of ``runs`` calls, in milliseconds (after one warm-up call)."""
    fn()
    times = []
    for _ in range(runs):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", type=float, default=0.5, help="share of frames kept")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, keep {args.keep}; fastest of {args.runs} calls, ms")
    print("| windows x frames | scores | greedy, torch ops | greedy, NumPy | speed-up |")
    print("| --- | --- | --- | --- | --- |")
    for windows, frames in ((1, 81), (16, 81), (1, 243), (16, 243), (128, 243)):
        print(table_row(windows, frames, args.keep, device, args.runs))


def host_loop(scores: torch.Tensor, count: int) -> torch.Tensor:
    """The NumPy loop with its copies each way, whatever ``greedy_spread`` would pick."""
    chosen = _greedy_spread_numpy(scores.to("cpu", torch.float64).numpy(), count)
    return torch.from_numpy(chosen).to(scores.device)


def table_row(windows: int, frames: int, keep: float, device: torch.device, runs: int) -> str:
    """Time scoring and both greedy loops on random windows ``(windows, frames, 17, 2)``."""
    x = torch.randn(windows, frames, 17, 2, device=device)
    count = max(2, round(keep * frames))
    scores = motion_graph_scores(x, 0.5, 4)
    t_scores = best_ms(partial(motion_graph_scores, x, 0.5, 4), device, runs)
    t_torch = best_ms(partial(_greedy_spread_torch, scores, count), device, runs)
    t_numpy = best_ms(partial(host_loop, scores, count), device, runs)
    assert torch.equal(_greedy_spread_torch(scores, count), greedy_spread(scores, count))
    return (
        f"| {windows} x {frames} | {t_scores:.2f} | {t_torch:.2f} | {t_numpy:.2f} "
        f"| {t_torch / t_numpy:.1f}x |"
    )


if __name__ == "__main__":
    main()
