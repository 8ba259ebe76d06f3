"""Structure-aware fuzzing of every reader at scale, with outcome counts (RELIABILITY.md).

Each case is a valid-looking file of one format, mutated (``tests/structured_fuzz.py``),
read by htpose's reader for it; every keypoint file that reads is then lifted by a small
random-weight model (the lifting code does not depend on the weights), every
``--lift-every``-th one to keep the run short. Outcomes: ``correct`` (a result with the
documented shapes and finite values), ``clean error`` (an HtposeError of one line), ``crash``
(any other exception), ``hang`` (over ``--timeout`` seconds), ``over budget`` (resident
memory grew by more than ``--max-growth-mb`` during the case).

    python benchmarks/fuzz_readers.py --examples 10000 --json runs/fuzz.json
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import structured_fuzz as sf  # noqa: E402

from htpose.config import Config  # noqa: E402
from htpose.errors import HtposeError  # noqa: E402
from htpose.lift import Lifter  # noqa: E402
from htpose.model.denoiser import ModelConfig, build_denoiser  # noqa: E402


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_reader(reader: str, examples: int, lifter: Lifter, args, real_cameras) -> dict:
    counts: Counter[str] = Counter()
    crashes: list[str] = []
    rng = random.Random(f"bench-{reader}")
    worst = 0.0
    reads = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(examples):
            case = Path(tmp) / str(i % 50)
            case.mkdir(exist_ok=True)
            for f in case.iterdir():
                f.unlink()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    path = sf.write_case(reader, rng, case, real_cameras)
            except Exception:  # noqa: BLE001 - a mutation numpy cannot even write
                counts["not writable"] += 1
                continue
            before = _rss_mb()
            signal.alarm(args.timeout)
            try:
                result = sf.read_case(reader, path)
                outcome = "correct"
                if hasattr(result, "pixels"):
                    reads += 1
                    assert result.pixels.shape[1:] == (17, 2)
                    if reads % args.lift_every == 0:
                        counts["lifted"] += 1
                        lifted = lifter(result, image_size=(1280, 720), fps=result.fps or 30,
                                        hypotheses=1, steps=1)  # fmt: skip
                        assert np.isfinite(lifted.joints_3d).all()
            except HtposeError as exc:
                outcome = "clean error"
                if "\n" in str(exc):
                    outcome = "crash"
                    crashes.append(f"multi-line error: {exc!r}")
            except Hang:
                outcome = "hang"
            except Exception as exc:  # noqa: BLE001 - counting crashes is the point
                outcome = "crash"
                where = traceback.extract_tb(exc.__traceback__)[-1]
                crashes.append(f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})")
            finally:
                signal.alarm(0)
            growth = _rss_mb() - before
            worst = max(worst, growth)
            if growth > args.max_growth_mb:
                outcome = "over budget"
            counts[outcome] += 1
    return {
        "tried": examples - counts["not writable"],
        **counts,
        "peak_rss_growth_mb": round(worst, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
        "crash_examples": crashes[:5],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=10_000, help="cases per reader")
    ap.add_argument("--readers", default=",".join(sf.READERS))
    ap.add_argument("--lift-every", type=int, default=20, help="lift every N-th readable file")
    ap.add_argument("--timeout", type=int, default=20, help="seconds before a case is a hang")
    ap.add_argument("--max-growth-mb", type=float, default=512.0)
    ap.add_argument("--cameras", default=str(REPO.parent / "shared/data/h36m_cameras.json"))
    ap.add_argument("--json", help="write the counts here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    signal.signal(signal.SIGALRM, _alarm)
    cfg = Config()
    cfg.model = ModelConfig(frames=9, width=16, depth=1, heads=2)
    torch.manual_seed(0)
    lifter = Lifter(build_denoiser(cfg.model), cfg)
    real = json.loads(Path(args.cameras).read_text()) if Path(args.cameras).exists() else None
    report = {}
    print(f"{'reader':16} {'tried':>6} {'correct':>8} {'clean err':>9} {'crash':>6} {'hang':>5} "
          f"{'over budg':>9} {'lifted':>7} {'peak MB':>8} {'s':>6}")  # fmt: skip
    for reader in args.readers.split(","):
        tick = time.perf_counter()
        r = run_reader(reader, args.examples, lifter, args, real)
        r["seconds"] = round(time.perf_counter() - tick, 1)
        report[reader] = r
        print(f"{reader:16} {r['tried']:6d} {r.get('correct', 0):8d} "
              f"{r.get('clean error', 0):9d} {r.get('crash', 0):6d} {r.get('hang', 0):5d} "
              f"{r.get('over budget', 0):9d} {r.get('lifted', 0):7d} {r['peak_rss_mb']:8.0f} "
              f"{r['seconds']:6.0f}", flush=True)  # fmt: skip
        for c in r["crash_examples"]:
            print(f"    crash: {c}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
