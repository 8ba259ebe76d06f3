"""Fault injection: SIGKILLs at random moments of training, a full disk, a damaged checkpoint.

A tiny model trains on a few real CMU clips. The run is killed ``--kills`` times at random
moments and resumed each time; at the end its weights are compared with an uninterrupted
run of the same seed, and for every kill the steps lost (done before the kill, minus the
step the resumed run started from) are counted. Prints a Markdown table for
benchmarks/RELIABILITY.md.

    python benchmarks/faults.py --kills 20
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from htpose.checkpoint import read_checkpoint
from htpose.cli import main as cli
from htpose.data.clips import ClipCollection, read_clips, write_clips

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def tiny_setup(work: Path, steps: int) -> Path:
    full = read_clips(SHARED / "cmu" / "cmu_h36m17.npz")
    train = [n for n in full.splits["train"] if "/walking/" in n][:2]
    val = full.splits["val"][:1]  # training validates on `val`
    test = [n for n in full.splits["test"] if "/running/" in n][:1]
    clips = {n: full.clips[n][:240] for n in train + val + test}
    splits = {"train": train, "val": val, "test": test}
    write_clips(work / "clips.npz", ClipCollection(clips, full.fps, splits))
    cfg = {
        "name": "faults",
        "model": {"frames": 9, "width": 16, "depth": 1, "heads": 2, "drop_path": 0.1},
        "data": {
            "clips": str(work / "clips.npz"),
            "camera_file": str(SHARED / "h36m_cameras.json"),
        },
        "diffusion": {"sampling_steps": 2, "hypotheses": 2},
        "train": {
            "steps": steps,
            "batch_size": 4,
            "log_every": 1,
            "checkpoint_every": 5,
            "val_every": 100,
            "val_windows": 4,
            "warmup_steps": 5,
        },
        "eval": {"batch_windows": 8},
    }
    path = work / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def weights(path: Path) -> dict[str, torch.Tensor]:
    tensors, _, _ = read_checkpoint(path)
    return {k: v for k, v in tensors.items() if not k.startswith("optim/")}


def logged_steps(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line)["step"])
        except (json.JSONDecodeError, KeyError):
            pass
    return out


def checkpoint_step(run: Path) -> int:
    for name in ("last.safetensors", "previous.safetensors"):
        try:
            return int(read_checkpoint(run / name)[2]["step"])
        except Exception:
            continue
    return 0


def _kill_and_resume(base: list[str], run: Path, kills: int, rng: random.Random) -> list[int]:
    """SIGKILL ``kills`` training processes at random moments, each resuming the last; the
    steps each kill lost (an empty tail: the run finished before the kill)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    lost = []
    for _ in range(kills):
        resumed_from = checkpoint_step(run) if run.exists() else 0
        proc = subprocess.Popen(
            [sys.executable, "-m", "htpose", *base, "--out", str(run), "--resume"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Kill somewhere between start-up and well into training.
        time.sleep(rng.uniform(1.5, 4.0))
        if proc.poll() is not None:
            break  # finished before this kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = max([s for s in logged_steps(run) if s > resumed_from], default=resumed_from)
        lost.append(done - checkpoint_step(run))
    return lost


def _full_disk(base: list[str], disk: Path) -> tuple[int, bool, bool]:
    """Disk full while writing a checkpoint: (exit code, last good one kept, resume works)."""
    import htpose.checkpoint as ck

    assert cli([*base, "--out", str(disk), "--stop-at", "10"]) == 0
    good = weights(disk / "last.safetensors")
    real_save = ck.save_file

    def full_disk(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as fh:
            fh.truncate(os.path.getsize(filename) // 2)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    ck.save_file = full_disk
    code = cli([*base, "--out", str(disk), "--resume"])
    ck.save_file = real_save
    kept = all(torch.equal(good[k], v) for k, v in weights(disk / "last.safetensors").items())
    return code, kept, cli([*base, "--out", str(disk), "--resume"]) == 0


def _damaged_last(base: list[str], damaged: Path, reference: dict) -> tuple[bool, bool]:
    """The last checkpoint cut to a third: (resume fell back, final weights as reference)."""
    assert cli([*base, "--out", str(damaged), "--stop-at", "20"]) == 0
    raw = (damaged / "last.safetensors").read_bytes()
    (damaged / "last.safetensors").write_bytes(raw[: len(raw) // 3])
    fell_back = cli([*base, "--out", str(damaged), "--resume"]) == 0
    same = all(
        torch.equal(reference[k], v) for k, v in weights(damaged / "model.safetensors").items()
    )
    return fell_back, same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="htpose_faults_"))
    config = tiny_setup(work, args.steps)
    base = ["train", "--config", str(config), "--no-progress", "--threads", "1"]

    whole = work / "whole"
    assert cli([*base, "--out", str(whole)]) == 0
    reference = weights(whole / "model.safetensors")

    run = work / "killed"
    lost = _kill_and_resume(base, run, args.kills, random.Random(args.seed))
    assert cli([*base, "--out", str(run), "--resume"]) == 0
    killed = weights(run / "model.safetensors")
    same = all(torch.equal(reference[k], killed[k]) for k in reference)
    log_ok = logged_steps(run) == list(range(1, args.steps + 1))
    code, disk_kept, disk_resumed = _full_disk(base, work / "disk")
    fell_back, damaged_same = _damaged_last(base, work / "damaged", reference)

    print("\n| fault | count | outcome | lost |")
    print("| --- | --- | --- | --- |")
    print(
        f"| SIGKILL at a random moment of training (resumed with --resume) | {len(lost)} | "
        f"final weights {'bit-identical to' if same else 'DIFFERENT from'} the uninterrupted "
        f"run; metrics.jsonl {'has every step once' if log_ok else 'is WRONG'} | steps since "
        f"the last checkpoint: max {max(lost, default=0)}, mean "
        f"{sum(lost) / max(len(lost), 1):.1f} (checkpoint every 5) |"
    )
    print(
        f"| disk full while writing a checkpoint | 1 | exit {code} with a one-line error; last "
        f"good checkpoint {'intact' if disk_kept else 'DAMAGED'}; resume "
        f"{'works' if disk_resumed else 'FAILS'} | steps since the last checkpoint |"
    )
    print(
        f"| last checkpoint damaged on disk (cut to a third) | 1 | resume "
        f"{'falls back to previous.safetensors' if fell_back else 'FAILS'}; final weights "
        f"{'bit-identical' if damaged_same else 'DIFFERENT'} | one checkpoint interval |"
    )
    print(f"\n{args.steps} steps, {work}")


if __name__ == "__main__":
    main()
