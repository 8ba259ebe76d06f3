"""Mean and spread over seeds of ``htpose evaluate --json`` results, as a Markdown table.

Each ``--variant NAME=PATTERN`` names the evaluation files of one variant's seeds with a
``{split}`` placeholder (``runs/study/hot_s*.{split}.json``); every split given is one column
of ``MPJPE / P-MPJPE`` (mean over actions, the files' own aggregation): the per-seed values,
then mean +- sample standard deviation. Nothing is re-evaluated: the numbers are the files'.

    python benchmarks/seed_table.py --split val,test \\
        --variant "HTP (TCEP)=runs/study/motion_graph_s*.{split}.json" \\
        --variant "evenly spaced=runs/study/uniform_s*.{split}.json"
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics


def _values(pattern: str, split: str, key: str) -> list[float]:
    """``key`` of every file the pattern names for ``split``, in file-name order."""
    return [
        float(json.load(open(path))[key])
        for path in sorted(glob.glob(pattern.replace("{split}", split)))
    ]


def _cell(mpjpe: list[float], p_mpjpe: list[float]) -> str:
    if not mpjpe:
        return "-"
    each = ", ".join(f"{v:.1f}" for v in mpjpe)
    if len(mpjpe) == 1:
        return f"{each} / {p_mpjpe[0]:.1f} (one seed)"
    mean, sd = statistics.mean(mpjpe), statistics.stdev(mpjpe)
    p_mean, p_sd = statistics.mean(p_mpjpe), statistics.stdev(p_mpjpe)
    return f"{each}: **{mean:.1f} +- {sd:.1f}** / {p_mean:.1f} +- {p_sd:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", required=True, metavar="NAME=PATTERN")
    parser.add_argument("--split", default="val,test", help="comma-separated splits")
    args = parser.parse_args()
    splits = args.split.split(",")
    print("| variant | seeds | " + " | ".join(f"`{s}` MPJPE / P-MPJPE" for s in splits) + " |")
    print("| --- | --- |" + " --- |" * len(splits))
    for item in args.variant:
        name, _, pattern = item.partition("=")
        cells, seeds = [], 0
        for split in splits:
            mpjpe = _values(pattern, split, "mpjpe_mm")
            cells.append(_cell(mpjpe, _values(pattern, split, "p_mpjpe_mm")))
            seeds = max(seeds, len(mpjpe))
        print(f"| {name} | {seeds} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
