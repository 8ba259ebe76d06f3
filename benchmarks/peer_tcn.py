"""The peer row: a deterministic temporal-convolution lifter (VideoPose3D-style), trained on the
same data, augmentation and CPU time as the diffusion models, evaluated beside them.

Not part of the package API. The network: a 1D convolution over 81 frames of 2D (34
channels) as dilated residual blocks (kernel 3, dilations 3, 9, 27), 256 channels, batch
norm, dropout 0.25, predicting the 3D of every frame whose 81-frame context lies inside the
input (``valid`` convolutions). Training windows come from htpose's own
:class:`~htpose.data.windows.CaptureSampler` with the diffusion config's ``data`` section
(cameras, pose augmentation, occlusions, noise, flip, normalisation), 81 + 31 frames long
so each window trains 32 outputs; loss MPJPE; Adam with cosine decay; stopped after a fixed
CPU time (``--minutes``) or a fixed number of steps (``--steps``). Under load (other
processes on the same cores) a CPU second buys fewer steps, so runs that share the machine
are compared at a step count measured once on an idle machine. At inference each window of
112 frames (edge-padded at clip ends) predicts its 32 centre frames, normalised per window
exactly as in training.

    # train for 40 CPU minutes on one thread, with the bundled recipe's data section
    python benchmarks/peer_tcn.py train --config configs/cmu_wide_htp.yaml --minutes 40 \\
        --out runs/peer_tcn.safetensors --threads 1
    # evaluate it beside diffusion checkpoints on val, test and test_wide, in one run
    python benchmarks/peer_tcn.py evaluate --tcn runs/peer_tcn.safetensors \\
        --diffusion HTP=runs/cmu_wide_htp/best.safetensors --splits val,test,test_wide
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from htpose.config import Config, load_config
from htpose.data.camera import normalize_keypoints
from htpose.data.sequences import Sequence
from htpose.data.temporal import window_indices
from htpose.metrics import mpjpe, p_mpjpe
from htpose.skeleton import NUM_JOINTS

RECEPTIVE = 81
OUTPUTS = 32


class TemporalConvLifter(nn.Module):
    """``(B, T, 17, 2)`` -> ``(B, T - 80, 17, 3)`` (root-relative metres)."""

    def __init__(self, channels: int = 256, dropout: float = 0.25) -> None:
        super().__init__()
        j = NUM_JOINTS
        self.expand = nn.Conv1d(2 * j, channels, 3, bias=False)
        self.expand_bn = nn.BatchNorm1d(channels)
        self.dilations = (3, 9, 27)
        self.blocks = nn.ModuleList()
        for d in self.dilations:
            self.blocks.append(
                nn.ModuleList(
                    [
                        nn.Conv1d(channels, channels, 3, dilation=d, bias=False),
                        nn.BatchNorm1d(channels),
                        nn.Conv1d(channels, channels, 1, bias=False),
                        nn.BatchNorm1d(channels),
                    ]
                )
            )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Conv1d(channels, 3 * j, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, j, _ = x.shape
        h = x.reshape(b, t, j * 2).transpose(1, 2)
        h = self.drop(torch.relu(self.expand_bn(self.expand(h))))
        for d, (conv, bn, pw, bn2) in zip(self.dilations, self.blocks):
            res = h[:, :, d : h.shape[2] - d]
            h = self.drop(torch.relu(bn(conv(h))))
            h = res + self.drop(torch.relu(bn2(pw(h))))
        out = self.head(h).transpose(1, 2).reshape(b, -1, j, 3)
        return out - out[..., :1, :]


def train_tcn(
    cfg: Config, minutes: float | None, out: Path, seed: int = 0, lr: float = 1e-3,
    steps: int | None = None,
) -> dict:  # fmt: skip
    """Train for ``minutes`` of CPU time or for ``steps`` steps (cosine decay over either)."""
    from htpose.train import training_sampler

    cfg.model.frames = RECEPTIVE + OUTPUTS - 1
    sampler = training_sampler(cfg)
    torch.manual_seed(seed)
    model = TemporalConvLifter()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    budget = minutes * 60 if steps is None else math.inf
    spent, step, log = 0.0, 0, []
    pad = RECEPTIVE // 2
    while spent < budget and (steps is None or step < steps):
        tick = time.process_time()
        rng = np.random.default_rng([seed, step])
        done = spent / budget if steps is None else step / steps
        batch = sampler.batch(rng, 64, done)
        for g in opt.param_groups:  # cosine over the budget
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))
        pred = model(batch["keypoints_2d"])
        target = batch["joints_3d"][:, pad : pad + OUTPUTS]
        loss = mpjpe(pred, target).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        spent += time.process_time() - tick
        step += 1
        if step % 200 == 0:
            log.append(
                {"step": step, "cpu_seconds": round(spent, 1), "loss_mm": 1000 * loss.item()}
            )
            print(json.dumps(log[-1]), flush=True)
            _save(model, cfg, out, step, spent, done=False)  # a stopped run keeps its weights
    _save(model, cfg, out, step, spent, done=True)
    return {"steps": step, "cpu_seconds": spent}


def _save(model: nn.Module, cfg: Config, out: Path, step: int, spent: float, done: bool) -> None:
    from htpose.io import atomic_path

    meta = {"steps": str(step), "cpu_seconds": f"{spent:.1f}", "complete": str(done)}
    meta["data"] = json.dumps(cfg.to_dict())
    with atomic_path(out) as tmp:
        save_file(model.state_dict(), str(tmp), metadata=meta)


@torch.no_grad()
def predict_tcn(model: TemporalConvLifter, seq: Sequence, normalization: str) -> np.ndarray:
    """``(T, 17, 3)`` for one sequence: windows of 112 frames predict their 32 centre frames."""
    pad = RECEPTIVE // 2
    size = RECEPTIVE + OUTPUTS - 1
    out = []
    for s in range(0, len(seq), OUTPUTS):
        idx = window_indices(len(seq), s - pad, size)
        px = torch.from_numpy(seq.keypoints_2d[idx].astype(np.float32))
        x = normalize_keypoints(px, seq.camera.width, seq.camera.height, normalization)
        out.append(model(x[None])[0].numpy())
    return np.concatenate(out)[: len(seq)]


def _errors(pred: np.ndarray, seq: Sequence) -> tuple[np.ndarray, np.ndarray]:
    p = torch.from_numpy(pred).double()
    g = torch.from_numpy(seq.joints_3d).double()
    return 1000 * mpjpe(p, g).numpy(), 1000 * p_mpjpe(p, g).numpy()


def _table(rows: dict[str, dict[str, list[np.ndarray]]]) -> dict[str, dict[str, float]]:
    """Per action mean, then the unweighted mean over actions (the protocol number)."""
    out = {}
    for action, errs in rows.items():
        out[action] = {k: float(np.concatenate(v).mean()) for k, v in errs.items()}
    out["mean over actions"] = {
        k: float(np.mean([v[k] for a, v in out.items()])) for k in ("mpjpe_mm", "p_mpjpe_mm")
    }
    return out


def load_tcn(path: str | Path) -> tuple[TemporalConvLifter, dict]:
    """A trained peer in eval mode and the config ``data`` section it was trained with."""
    model = TemporalConvLifter()
    model.load_state_dict(load_file(str(path)))
    return model.eval(), json.loads(_metadata(str(path))["data"])["data"]


def evaluate_tcn(path: Path, sequences: list[Sequence], normalization: str) -> dict:
    model, _ = load_tcn(path)
    rows: dict[str, dict[str, list[np.ndarray]]] = {}
    for seq in sequences:
        e, pe = _errors(predict_tcn(model, seq, normalization), seq)
        row = rows.setdefault(seq.action, {"mpjpe_mm": [], "p_mpjpe_mm": []})
        row["mpjpe_mm"].append(e)
        row["p_mpjpe_mm"].append(pe)
    return _table(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--config", required=True, help="its data section is the training recipe")
    budget = t.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float, help="CPU time budget")
    budget.add_argument("--steps", type=int, help="step budget (batches of 64 windows)")
    t.add_argument("--out", required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    e = sub.add_parser("evaluate")
    e.add_argument("--tcn", required=True)
    e.add_argument("--diffusion", action="append", default=[], metavar="NAME=CHECKPOINT")
    e.add_argument("--splits", default="val,test,test_wide")
    e.add_argument("--views", default="0", help="Human3.6M test views per subject")
    e.add_argument("--subjects", default="S9", help="Human3.6M test subjects")
    e.add_argument("--cameras", default="h36m", help="h36m or random:N:SEED")
    e.add_argument("--hypotheses", type=int, default=20)
    e.add_argument("--steps", type=int, help="DDIM steps K (default: each model's own)")
    e.add_argument("--overlap", type=float, default=None)
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--json", help="write every table here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.cmd == "train":
        cfg = load_config(args.config)
        print(train_tcn(cfg, args.minutes, Path(args.out), args.seed, steps=args.steps))
        return
    evaluate_all(args)


def evaluate_all(args: argparse.Namespace) -> None:
    from htpose.checkpoint import load_model
    from htpose.data.sources import load_sequences
    from htpose.evaluate import evaluate

    _, data = load_tcn(args.tcn)
    random_cameras = None
    if args.cameras.startswith("random:"):
        _, n, seed = args.cameras.split(":")
        random_cameras = (int(n), int(seed))
    views = [int(v) for v in args.views.split(",")]
    models = {n: load_model(p) for n, p in (d.split("=", 1) for d in args.diffusion)}
    doc: dict = {}
    for split in args.splits.split(","):
        seqs = load_sequences(
            data["clips"], data["camera_file"], split, args.subjects.split(","), views,
            random_cameras=random_cameras,
        )  # fmt: skip
        doc[split] = {"TCN (peer)": evaluate_tcn(Path(args.tcn), seqs, data["normalization"])}
        for name, (model, cfg, _) in models.items():
            res = evaluate(
                model, cfg, seqs, (args.hypotheses,),
                args.steps or cfg.diffusion.sampling_steps, ("mean",), True, 0, 16,
                progress=False, overlap=args.overlap,
            )  # fmt: skip
            table = res.tables[("mean", args.hypotheses)].summary()
            doc[split][name] = {
                **{a: {k: v[k] for k in ("mpjpe_mm", "p_mpjpe_mm")}
                   for a, v in table["per_action"].items()},
                "mean over actions": {"mpjpe_mm": table["mpjpe_mm"],
                                      "p_mpjpe_mm": table["p_mpjpe_mm"]},
            }  # fmt: skip
        print(f"\n== {split} ({len(seqs)} sequences, cameras {args.cameras}) ==")
        print(f"{'model':28} {'MPJPE':>8} {'P-MPJPE':>8}")
        for name, t in doc[split].items():
            m = t["mean over actions"]
            print(f"{name:28} {m['mpjpe_mm']:8.1f} {m['p_mpjpe_mm']:8.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))


def _metadata(path: str) -> dict:
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        return f.metadata()


if __name__ == "__main__":
    main()
