"""Crafted hostile inputs through the real command line, each in its own process.

For every case: the exit status, whether stderr is one ``htpose: error:`` line, whether a
crafted pickle ran (a marker file appears), whether any input changed or a partial output
was left, and the process's peak memory. Printed as a table for RELIABILITY.md.

    python benchmarks/hostile_inputs.py --json runs/hostile.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]


class Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _pickle_npz(path: Path, key: str, marker: Path) -> Path:
    arr = np.empty((), dtype=object)
    arr[()] = Payload(str(marker))
    np.savez(path, **{key: arr})
    return path


def _keypoints(path: Path, fps: float = 50.0, scale: float = 1.0) -> Path:
    rng = np.random.default_rng(0)
    kp = (500 + rng.normal(0, 60, (1, 17, 2)) + rng.normal(0, 2, (60, 17, 2))) * scale
    np.savez(path, keypoints=kp, fps=np.float64(fps), width=1000, height=1000)
    return path


def _text(path: Path) -> Path:
    path.write_text("not a video\n" * 100)
    return path


def _fake_mp4(tmp: Path) -> Path:
    path = tmp / "fake.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(4096))
    return path


def _link(path: Path, target: str) -> Path:
    if not path.is_symlink():
        path.symlink_to(target)
    return path


def _nested_fields(tmp: Path) -> Path:
    path = tmp / "nested.npz"
    np.savez(path, keypoints=np.full((5, 17, 2), 500.0), fps=np.array([[30.0]]),
             width=np.array([1000, 2]), height=1000)  # fmt: skip
    return path


def _huge_header_checkpoint(path: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    from htpose.config import Config

    cfg = Config().to_dict()
    cfg["model"]["frames"] = 1_500_000_000
    header = {"format": 1, "config": cfg, "meta": {}}
    save_file({"x": torch.zeros(300_000)}, str(path), metadata={"htpose": json.dumps(header)})
    return path


def _zip_bomb(path: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        header = repr({"descr": "<f8", "fortran_order": False, "shape": (2_000_000_000, 17, 2)})
        head = header.encode() + b" " * (117 - len(header)) + b"\n"
        with zf.open("keypoints.npy", "w", force_zip64=True) as fh:
            fh.write(b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head)
            zero = b"\x00" * (1 << 20)
            for _ in range(64):
                fh.write(zero)
    return path


def cases(tmp: Path) -> list[tuple[str, list[str], list[Path]]]:
    """(name, argv, inputs that must not change)."""
    m = tmp / "MARKER"
    kp = _keypoints(tmp / "kp.npz")
    cfg = {"model": {"frames": 2_000_000_000}}
    (tmp / "frames.yaml").write_text(yaml.safe_dump(cfg))
    (tmp / "width.yaml").write_text(yaml.safe_dump({"model": {"width": 4_000_000}}))
    (tmp / "steps.yaml").write_text(yaml.safe_dump({"diffusion": {"timesteps": 20_000_000_000}}))
    (tmp / "nan.yaml").write_text("model:\n  mlp_ratio: .nan\n")
    (tmp / "lr.yaml").write_text("train:\n  lr: 1.0e30\n")
    os.symlink("/dev/zero", tmp / "zero.json")
    os.symlink("/dev/zero", tmp / "zero.yaml")
    os.symlink(tmp / "loop.json", tmp / "loop.json")
    (tmp / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (tmp / "coco_bool.json").write_text(json.dumps(
        [{"image_id": b, "keypoints": [1.0] * 51} for b in (True, False)]))  # fmt: skip
    (tmp / "coco_images.json").write_text(json.dumps({"images": 7, "annotations": [
        {"image_id": 1, "keypoints": [1.0] * 51}]}))  # fmt: skip
    (tmp / "mmpose.json").write_text(json.dumps([{"frame_id": 0, "instances": {"a": 1}}]))
    kp_json = tmp / "kp.json"
    kp_json.write_text(json.dumps([{"image_id": i, "keypoints": [400.0 + i, 300.0, 0.9] * 17}
                                   for i in range(20)]))  # fmt: skip
    yolo = tmp / "labels"
    yolo.mkdir()
    (yolo / "v_1.txt").write_text(" ".join(["0.5"] * 56) + "\n")
    (yolo / "v_2.txt").write_text(" ".join(["0.5"] * 1_000_000))  # a 4 MB line
    (tmp / "inf.txt").write_text(" ".join(["1e400"] * 57))
    os.symlink("/dev/zero", tmp / "zero.txt")
    lift = ["-m", "htpose", "lift"]
    out = str(tmp / "out.npz")
    return [
        ("lift YOLO folder with a 1e6-number line", [*lift, str(yolo), "-o", out, "--width",
         "640", "--height", "480"], [yolo / "v_1.txt"]),
        ("lift YOLO label of infinities", [*lift, str(tmp / "inf.txt"), "-o", out, "--width",
         "640", "--height", "480"], []),
        ("lift YOLO .txt -> /dev/zero", [*lift, str(tmp / "zero.txt"), "-o", out], []),
        ("convert-h36m crafted pickle", ["-m", "htpose", "convert-h36m",
         str(_pickle_npz(tmp / "p3d.npz", "positions_3d", m)), "--out", str(tmp / "c.npz")], []),
        ("evaluate --data crafted pickle", ["-m", "htpose", "evaluate", "--data",
         str(_pickle_npz(tmp / "p2.npz", "positions_3d", m))], []),
        ("lift crafted pickle .npz", [*lift, str(_pickle_npz(tmp / "p4.npz", "keypoints", m)),
         "-o", out], []),
        ("render crafted pickle", ["-m", "htpose", "render",
         str(_pickle_npz(tmp / "p5.npz", "joints_3d", m)), "-o", str(tmp / "r.gif")], []),
        ("lift --fps 1e-6", [*lift, str(kp), "-o", out, "--fps", "1e-6"], [kp]),
        ("lift fps 1e-6 inside the .npz", [*lift, str(_keypoints(tmp / "slow.npz", 1e-6)), "-o",
         out], []),
        ("lift --fps 0.2 under --max-memory 16M", [*lift, str(kp), "-o", out, "--fps", "0.2",
         "--max-memory", "16M"], [kp]),
        ("lift --hypotheses 1000 under --max-memory 64M", [*lift, str(kp), "-o", out,
         "--hypotheses", "1000", "--max-memory", "64M"], [kp]),
        ("lift --fps nan", [*lift, str(kp), "-o", out, "--fps", "nan"], [kp]),
        ("lift --fps 0", [*lift, str(kp), "-o", out, "--fps", "0"], [kp]),
        ("lift --fps -30", [*lift, str(kp), "-o", out, "--fps", "-30"], [kp]),
        ("lift --fps 1e9", [*lift, str(kp), "-o", out, "--fps", "1e9"], [kp]),
        ("lift --focal inf", [*lift, str(kp), "-o", out, "--focal", "inf"], [kp]),
        ("lift --hypotheses 1001", [*lift, str(kp), "-o", out, "--hypotheses", "1001"], [kp]),
        ("lift keypoints of 1e30", [*lift, str(_keypoints(tmp / "big.npz", scale=1e27)), "-o",
         out], []),
        ("lift zip bomb .npz", [*lift, str(_zip_bomb(tmp / "bomb.npz")), "-o", out], []),
        ("lift /dev/zero as JSON", [*lift, str(tmp / "zero.json"), "-o", out, "--format",
         "coco"], []),
        ("lift symlink loop", [*lift, str(tmp / "loop.json"), "-o", out, "--format", "coco"], []),
        ("lift 200k-deep JSON", [*lift, str(tmp / "deep.json"), "-o", out], []),
        ("lift boolean image ids", [*lift, str(tmp / "coco_bool.json"), "-o", out, "--width",
         "1000", "--height", "1000"], []),
        ("lift COCO images of the wrong type", [*lift, str(tmp / "coco_images.json"), "-o", out],
         []),
        ("lift MMPose instances not a list", [*lift, str(tmp / "mmpose.json"), "-o", out], []),
        ("lift -o onto its input", [*lift, str(kp), "-o", str(kp)], [kp]),
        ("lift --json onto its input", [*lift, str(kp_json), "-o", str(tmp / "kp.npz"), "--json",
         "--width", "1000", "--height", "1000"], [kp_json, kp]),
        ("lift --render out.avi", [*lift, str(kp), "-o", out, "--csv", "--render",
         str(tmp / "out.avi")], [kp]),
        ("lift header declaring 1.5e9 frames", [*lift, str(kp), "-o", out, "--checkpoint",
         str(_huge_header_checkpoint(tmp / "huge.safetensors"))], [kp]),
        ("train config frames 2e9", ["-m", "htpose", "train", "--config",
         str(tmp / "frames.yaml"), "--out", str(tmp / "run")], []),
        ("train config width 4e6", ["-m", "htpose", "train", "--config", str(tmp / "width.yaml"),
         "--out", str(tmp / "run")], []),
        ("train config timesteps 2e10", ["-m", "htpose", "train", "--config",
         str(tmp / "steps.yaml"), "--out", str(tmp / "run")], []),
        ("train config mlp_ratio nan", ["-m", "htpose", "train", "--config",
         str(tmp / "nan.yaml"), "--out", str(tmp / "run")], []),
        ("train config lr 1e30", ["-m", "htpose", "train", "--config", str(tmp / "lr.yaml"),
         "--out", str(tmp / "run")], []),
        ("train config /dev/zero", ["-m", "htpose", "train", "--config", str(tmp / "zero.yaml"),
         "--out", str(tmp / "run")], []),
        ("evaluate --hypotheses 1000000", ["-m", "htpose", "evaluate", "--hypotheses",
         "1000000"], []),
        ("evaluate --cameras random:0:1", ["-m", "htpose", "evaluate", "--cameras",
         "random:0:1"], []),
        ("export --onnx onto the checkpoint", ["-m", "htpose", "export", "--checkpoint",
         str(tmp / "huge.safetensors"), "--onnx", str(tmp / "huge.safetensors")], []),
        ("export --opset 99999", ["-m", "htpose", "export", "--onnx", str(tmp / "x.onnx"),
         "--opset", "99999"], []),
        ("evaluate --seed 1e23", ["-m", "htpose", "evaluate", "--seed",
         "100000000000000000000000"], []),
        ("lift npz fps [[30]] and width [1000, 2]", [*lift, str(_nested_fields(tmp)), "-o", out],
         []),
        ("lift --keep-ratio 2 (HTP re-plan)", [*lift, str(kp), "-o", out, "--keep-ratio", "2"],
         [kp]),
        ("lift --view 91,0", [*lift, str(kp), "-o", out, "--render", str(tmp / "v.gif"),
         "--view", "91,0"], [kp]),
        ("calibrate --out onto the checkpoint", ["-m", "htpose", "calibrate", "--checkpoint",
         str(tmp / "huge.safetensors"), "--out", str(tmp / "huge.safetensors")], []),
        ("video: a text file named .mp4", ["-m", "htpose", "video", str(_text(tmp / "t.mp4")),
         "-o", out, "--render", str(tmp / "v.mp4")], []),
        ("video: an mp4 header and zeros", ["-m", "htpose", "video", str(_fake_mp4(tmp)),
         "-o", out], []),
        ("video -o onto its input", ["-m", "htpose", "video", str(tmp / "t.mp4"), "-o",
         str(tmp / "t.mp4")], [tmp / "t.mp4"]),
        ("video --person -1", ["-m", "htpose", "video", str(tmp / "t.mp4"), "-o", out,
         "--person", "-1"], []),
        ("video /dev/zero", ["-m", "htpose", "video", str(_link(tmp / "z.mp4", "/dev/zero")),
         "-o", out], []),
    ]  # fmt: skip


def _digest(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "" for p in paths]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, argv, inputs in cases(tmp):
            before = _digest(inputs)
            leftovers_before = set(tmp.iterdir())
            proc = subprocess.run(
                [sys.executable, *argv], capture_output=True, text=True, timeout=300,
                env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO,
            )  # fmt: skip
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            err = proc.stderr.strip()
            one_line = err.startswith("htpose: error:") and "\n" not in err
            ran = (tmp / "MARKER").exists()
            new = {p.name for p in set(tmp.iterdir()) - leftovers_before}
            outcome = "clean error" if proc.returncode == 2 and one_line else (
                "correct result" if proc.returncode == 0 else "crash")  # fmt: skip
            rows.append({
                "case": name, "exit": proc.returncode, "outcome": outcome, "code_ran": ran,
                "input_changed": _digest(inputs) != before, "left_files": sorted(new),
                "peak_rss_mb_so_far": round(peak), "message": err[:160],
            })  # fmt: skip
            for p in set(tmp.iterdir()) - leftovers_before:
                if p.is_file():
                    p.unlink()
    print(f"{'case':46} {'exit':>4} {'outcome':14} {'ran':>4} {'changed':>7} {'left':>5}")
    for r in rows:
        print(f"{r['case']:46} {r['exit']:4d} {r['outcome']:14} {str(r['code_ran']):>4} "
              f"{str(r['input_changed']):>7} {len(r['left_files']):5d}")  # fmt: skip
    worst = max(r["peak_rss_mb_so_far"] for r in rows)
    print(
        f"\n{len(rows)} cases; crashes {sum(r['outcome'] == 'crash' for r in rows)}; "
        f"code ran {sum(r['code_ran'] for r in rows)}; inputs changed "
        f"{sum(r['input_changed'] for r in rows)}; partial outputs "
        f"{sum(bool(r['left_files']) for r in rows)}; peak memory of any case {worst} MB"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
