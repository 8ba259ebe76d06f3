"""Softmax over short rows on a CPU: PyTorch's kernel against the spelled-out one in `attend`.

Prints two tables: the softmax alone by row length, and one-window HTP inference (H = 5,
K = 1, flip `split`) per merge ratio with the short-row path off (``SHORT_ROWS = 0``, the
kernel everywhere) and on, alternated ``--repeats`` times so both see the same machine::

    python benchmarks/short_softmax.py --config configs/cmu_wide_htp.yaml --repeats 2
"""

from __future__ import annotations

import argparse

import torch

from htpose.config import apply_overrides, load_config
from htpose.model import attention, build_denoiser
from htpose.profile import _inference, median_seconds


def softmax_table(elements: int = 1_600_000) -> None:
    print("| row length | torch softmax (ms) | spelled out (ms) |")
    print("| --- | --- | --- |")
    for length in (5, 10, 15, 16, 20):
        x = torch.randn(elements // length, length)
        kernel = median_seconds(lambda x=x: x.softmax(dim=-1), 20, warmup=3)
        saved, attention.SHORT_ROWS = attention.SHORT_ROWS, length + 1
        spelled = median_seconds(lambda x=x: attention._softmax_last(x), 20, warmup=3)
        attention.SHORT_ROWS = saved
        print(f"| {length} | {kernel * 1e3:.2f} | {spelled * 1e3:.2f} |")


def model_table(config: str, merges: list[str], repeats: int, runs: int) -> None:
    cfg0 = load_config(config)
    frames = cfg0.model.frames
    print("\n| merge ratio | short-row path | frames/s per repeat |")
    print("| --- | --- | --- |")
    for merge in merges:
        cfg = apply_overrides(cfg0, [f"model.pruning.merge_ratio={merge}"])
        run = _inference(build_denoiser(cfg.model), cfg, 5, 1, "split")
        fps: dict[str, list[float]] = {"off": [], "on": []}
        saved = attention.SHORT_ROWS
        for _ in range(repeats):
            for name, rows in (("off", 0), ("on", saved)):
                attention.SHORT_ROWS = rows
                fps[name].append(frames / median_seconds(run, runs, warmup=3))
        attention.SHORT_ROWS = saved
        for name, values in fps.items():
            print(f"| {merge} | {name} | {' / '.join(f'{v:.0f}' for v in values)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="configs/cmu_wide_htp.yaml")
    ap.add_argument("--merges", default="0.25,0.5,0.75")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    softmax_table()
    model_table(args.config, args.merges.split(","), args.repeats, args.runs)


if __name__ == "__main__":
    main()
