"""Training the denoiser on ``y_0`` prediction (DDPM forward process, MPJPE loss).

Every random draw of step ``s`` (the batch, the timesteps, the noise, drop-path) is seeded
from ``(seed, s)``, so a run resumed from its last checkpoint continues exactly as an
uninterrupted one would. The run folder holds ``config.yaml``, ``metrics.jsonl`` (one JSON
object per line), ``last.safetensors`` (weights + optimizer state, to resume) and
``model.safetensors`` (weights only, for evaluation and lifting).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from htpose.checkpoint import load_weights, model_state, read_checkpoint, save_checkpoint
from htpose.config import Config, dump_config
from htpose.data.camera import load_h36m_cameras
from htpose.data.clips import read_clips
from htpose.data.sequences import DetectorNoise, Sequence
from htpose.data.sources import collection_sequences
from htpose.data.windows import WindowSampler
from htpose.diffusion.ddim import DDIMSampler
from htpose.diffusion.pipeline import sample_hypotheses
from htpose.diffusion.schedule import NoiseSchedule
from htpose.errors import CheckpointError
from htpose.io import atomic_write
from htpose.metrics import mpjpe, mpjve
from htpose.model.denoiser import Denoiser


def load_training_data(cfg: Config) -> tuple[list[Sequence], list[Sequence]]:
    """Train sequences (train split x train cameras) and validation ones (test x test)."""
    collection = read_clips(cfg.data.clips)
    cameras = load_h36m_cameras(cfg.data.cameras)
    train = collection_sequences(
        collection.select(cfg.data.train_split),
        cameras,
        cfg.data.train_subjects,
        distortion=cfg.data.distortion,
    )
    val = collection_sequences(
        collection.select(cfg.data.test_split),
        cameras,
        cfg.data.test_subjects,
        distortion=cfg.data.distortion,
    )
    return train, val


def diffusion_loss(
    model: Denoiser,
    schedule: NoiseSchedule,
    batch: dict[str, torch.Tensor],
    cfg: Config,
    gen: torch.Generator,
) -> torch.Tensor:
    """MPJPE (+ optional velocity term) of the ``y_0`` prediction at random noise levels."""
    y0 = batch["joints_3d"]
    t = torch.randint(0, schedule.num_steps, (y0.shape[0],), generator=gen)
    noise = torch.randn(y0.shape, generator=gen)
    y_t = schedule.add_noise(y0, noise, t)
    pred = model(y_t, t, model.encode_condition(batch["keypoints_2d"]))
    loss = mpjpe(pred, y0).mean()
    if cfg.diffusion.velocity_weight > 0:
        loss = loss + cfg.diffusion.velocity_weight * mpjve(pred, y0).mean()
    return loss


def learning_rate(cfg: Config, step: int) -> float:
    t = cfg.train
    warm = min(1.0, (step + 1) / max(t.warmup_steps, 1))
    if t.lr_schedule == "cosine":
        return t.lr * warm * 0.5 * (1 + math.cos(math.pi * min(step / t.steps, 1.0)))
    return t.lr * warm * t.lr_decay ** (step // t.decay_every)


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    state = opt.state_dict()
    tensors = {}
    for idx, entry in state["state"].items():
        for name, value in entry.items():
            tensors[f"optim/{idx}/{name}"] = torch.as_tensor(value)
    groups = [{k: v for k, v in g.items()} for g in state["param_groups"]]
    return tensors, groups


def _restore_optimizer(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, idx, name = key.split("/", 2)
            state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": groups})


@torch.no_grad()
def validate(
    model: Denoiser, sampler: DDIMSampler, windows: dict[str, torch.Tensor], batch: int
) -> float:
    """MPJPE in mm with one hypothesis, one step, no flip (D3DP's per-epoch check)."""
    model.eval()
    errs = []
    gen = torch.Generator().manual_seed(0)
    for i in range(0, len(windows["keypoints_2d"]), batch):
        hyps = sample_hypotheses(
            model, sampler, windows["keypoints_2d"][i : i + batch], 1, False, gen
        )
        errs.append(mpjpe(hyps[:, 0], windows["joints_3d"][i : i + batch]).reshape(-1))
    model.train()
    return float(torch.cat(errs).mean() * 1000)


def _append_log(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def _trim_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint being resumed from."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
    atomic_write(path, lambda fh: fh.write(("\n".join(keep) + "\n" if keep else "").encode()))


def train(
    cfg: Config,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    stop_at: int | None = None,
) -> Path:
    """Train per ``cfg`` into ``out_dir``; returns the path of ``model.safetensors``.

    ``stop_at`` ends this run after that step (with a checkpoint) while the schedule still
    aims at ``train.steps``: a later ``resume=True`` run carries on as if never stopped.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "config.yaml", lambda fh: fh.write(dump_config(cfg).encode()))
    log_path = out / "metrics.jsonl"

    train_seqs, val_seqs = load_training_data(cfg)
    noise = DetectorNoise(**asdict(cfg.data.noise))
    sampler_train = WindowSampler(
        train_seqs, cfg.model.frames, noise, cfg.data.noise_prob, cfg.data.flip_prob
    )
    val_windows = WindowSampler(val_seqs, cfg.model.frames).batch(
        np.random.default_rng([cfg.train.seed, 10**9]), cfg.train.val_windows
    )

    torch.manual_seed(cfg.train.seed)
    model = Denoiser(cfg.model)
    schedule = NoiseSchedule(cfg.diffusion.timesteps, cfg.diffusion.schedule)
    val_sampler = DDIMSampler(schedule, 1, cfg.diffusion.eta, cfg.diffusion.clip_denoised)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay
    )

    start, elapsed = 0, 0.0
    last = out / "last.safetensors"
    if resume and last.exists():
        tensors, saved_cfg, meta = read_checkpoint(last)
        if saved_cfg.model != cfg.model:
            raise CheckpointError(
                f"{last} was trained with another model config; use a new output folder"
            )
        load_weights(model, model_state(tensors), last)
        _restore_optimizer(opt, tensors, meta["optimizer_groups"])
        start, elapsed = int(meta["step"]), float(meta.get("train_seconds", 0.0))
        _trim_log(log_path, start)
    elif not resume and log_path.exists():
        log_path.unlink()

    def checkpoint(step: int) -> None:
        tensors, groups = _optimizer_tensors(opt)
        meta = {"step": step, "optimizer_groups": groups, "train_seconds": elapsed}
        save_checkpoint(last, model, cfg, tensors, meta)
        save_checkpoint(
            out / "model.safetensors", model, cfg, meta={"step": step, "train_seconds": elapsed}
        )

    model.train()
    end = cfg.train.steps if stop_at is None else min(stop_at, cfg.train.steps)
    bar = tqdm(
        range(start, end),
        initial=start,
        total=cfg.train.steps,
        disable=not progress,
        desc="train",
        dynamic_ncols=True,
    )
    running = []
    for step in bar:
        tick = time.perf_counter()
        rng = np.random.default_rng([cfg.train.seed, step])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        torch.manual_seed(int(rng.integers(2**62)))  # drop-path draws from the global generator
        batch = sampler_train.batch(rng, cfg.train.batch_size)
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, step)
        loss = diffusion_loss(model, schedule, batch, cfg, gen)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training diverged at step {step} (loss {loss.item()})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
        elapsed += time.perf_counter() - tick
        running.append(loss.item())
        done = step + 1
        if done % cfg.train.log_every == 0 or done == cfg.train.steps:
            record = {
                "step": done,
                "loss_mm": 1000 * float(np.mean(running)),
                "lr": learning_rate(cfg, step),
                "train_seconds": round(elapsed, 2),
            }
            if done % cfg.train.val_every == 0 or done == cfg.train.steps:
                record["val_mpjpe_mm"] = validate(
                    model, val_sampler, val_windows, cfg.eval.batch_windows
                )
            _append_log(log_path, record)
            bar.set_postfix(loss_mm=f"{record['loss_mm']:.1f}")
            running = []
        if done % cfg.train.checkpoint_every == 0 or done in (cfg.train.steps, end):
            checkpoint(done)
    if start >= cfg.train.steps and not (out / "model.safetensors").exists():
        checkpoint(start)
    return out / "model.safetensors"
