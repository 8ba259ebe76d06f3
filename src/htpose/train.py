"""Training the denoiser on ``y_0`` prediction (DDPM forward process, MPJPE loss).

Every random draw of step ``s`` (the batch, the timesteps, the noise, drop-path) is seeded
from ``(seed, s)``, so a run resumed from its last checkpoint continues exactly as an
uninterrupted one would. The run folder holds ``config.yaml``, ``metrics.jsonl`` (one JSON
object per line), ``last.safetensors`` (weights + optimizer state, to resume) and
``model.safetensors`` (weights only, for evaluation and lifting).

Several processes started by ``torchrun`` train one model with DistributedDataParallel: every
rank draws the same global batch from the step's seed and takes its own contiguous shard, so
the gradient all-reduce (a mean over ranks) equals the single-process gradient of the global
batch; only rank 0 validates, logs and writes checkpoints.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from htpose import budget
from htpose.checkpoint import (
    load_grown_weights,
    load_weights,
    model_state,
    read_checkpoint,
    save_checkpoint,
)
from htpose.config import Config, dump_config
from htpose.data.camera import load_h36m_cameras
from htpose.data.capture import novel_capture
from htpose.data.clips import read_clips
from htpose.data.sequences import DetectorNoise
from htpose.data.sources import collection_sequences, select_views
from htpose.data.temporal import MODEL_FPS, resample
from htpose.data.windows import Augmentation, CaptureSampler, WindowSampler
from htpose.diffusion.ddim import DDIMSampler
from htpose.diffusion.pipeline import sample_hypotheses
from htpose.diffusion.schedule import NoiseSchedule
from htpose.errors import CheckpointError, ConfigError, HtposeError
from htpose.io import atomic_write
from htpose.metrics import mpjpe, mpjve
from htpose.model.denoiser import Denoiser, build_denoiser


class TrainingDiverged(HtposeError):
    """Training produced a non-finite loss, weights or validation error; the checkpoints
    already written (the last good ones) are left as they are."""

    def __init__(self, step: int, what: str, last: Path) -> None:
        kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint kept"
        super().__init__(f"training diverged at step {step} ({what}); {kept}; try a lower train.lr")


def training_sampler(cfg: Config) -> CaptureSampler:
    """Windows of the ``train`` split made on the fly (see :class:`CaptureSampler`)."""
    collection = read_clips(cfg.data.clips).select(cfg.data.train_split)
    cameras = load_h36m_cameras(cfg.data.camera_file)
    fixed = select_views(cameras, cfg.data.train_subjects, None)
    clips = [resample(c, collection.fps, MODEL_FPS) for c in collection.clips.values()]
    d = cfg.data
    aug = Augmentation(
        camera_prob=d.cameras.prob if d.cameras.enabled else 0.0,
        ranges=d.cameras.ranges(),
        min_visible=d.cameras.min_visible,
        tilt_prob=d.pose.tilt_prob,
        tilt_max=d.pose.tilt_max,
        tilt_from=d.pose.tilt_from,
        scale_prob=d.pose.scale_prob,
        body_scale=tuple(d.pose.body_scale),
        bone_jitter=d.pose.bone_jitter,
        mix_prob=d.pose.mix_prob,
        occlusion_prob=d.occlusion_prob,
        noise_prob=d.noise_prob,
        flip_prob=d.flip_prob,
    )
    noise = DetectorNoise(**asdict(d.noise))
    return CaptureSampler(clips, cfg.model.frames, fixed, aug, noise, d.distortion, d.normalization)


class StepBatches(torch.utils.data.Dataset):
    """The draws of training step ``s``: the seeds of its noise and drop-path and its batch,
    all from ``(train.seed, s)``, so a loader process makes exactly what the training
    process would have made."""

    def __init__(self, sampler: CaptureSampler, cfg: Config) -> None:
        self.sampler, self.cfg = sampler, cfg

    def __len__(self) -> int:
        return self.cfg.train.steps

    def __getitem__(self, step: int) -> tuple[int, int, dict[str, torch.Tensor]]:
        t = self.cfg.train
        rng = np.random.default_rng([t.seed, step])
        noise_seed = int(rng.integers(2**62))
        torch_seed = int(rng.integers(2**62))
        return noise_seed, torch_seed, self.sampler.batch(rng, t.batch_size, step / t.steps)


def step_draws(data: StepBatches, first: int, end: int, workers: int) -> Iterator:
    """The draws of steps ``first .. end - 1`` in order, made ahead by ``workers`` processes
    (0: each made here when it is due)."""
    if workers == 0 or end <= first:
        return (data[s] for s in range(first, end))
    loader = torch.utils.data.DataLoader(
        data, batch_size=None, sampler=range(first, end), num_workers=workers, prefetch_factor=4
    )
    return iter(loader)


def validation_sets(cfg: Config) -> dict[str, dict[str, torch.Tensor]]:
    """Fixed windows of the ``val`` split: through the Human3.6M test cameras (``h36m``) and,
    when camera augmentation is on, through the novel-camera test kinds (``novel``)."""
    collection = read_clips(cfg.data.clips).select(cfg.data.val_split)
    cameras = load_h36m_cameras(cfg.data.camera_file)
    sets = {
        "h36m": collection_sequences(
            collection, cameras, cfg.data.test_subjects, distortion=cfg.data.distortion
        )
    }
    if cfg.data.cameras.enabled:
        sets["novel"] = novel_capture(collection, 4, seed=0, distortion=cfg.data.distortion)
    out = {}
    for i, (name, seqs) in enumerate(sets.items()):
        sampler = WindowSampler(seqs, cfg.model.frames, normalization=cfg.data.normalization)
        out[name] = sampler.batch(
            np.random.default_rng([cfg.train.seed, 10**9 + i]), cfg.train.val_windows
        )
    return out


def draw_noise(
    schedule: NoiseSchedule,
    batch: dict[str, torch.Tensor],
    gen: torch.Generator,
    high_noise_share: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Add the step's timesteps ``t`` ``(B,)`` and noise ``(B, F, J, 3)`` to a batch.

    ``t`` is uniform, except that each window is put at the last timestep (pure noise) with
    probability ``high_noise_share``. Drawn on the CPU for the whole (global) batch, so a
    run gives the same draws on any device and any number of ranks.
    """
    y0 = batch["joints_3d"]
    t = torch.randint(0, schedule.num_steps, (y0.shape[0],), generator=gen)
    noise = torch.randn(y0.shape, generator=gen)
    if high_noise_share > 0:  # drawn only then, so runs without it keep their old draws
        last = torch.rand(y0.shape[0], generator=gen) < high_noise_share
        t = torch.where(last, torch.full_like(t, schedule.num_steps - 1), t)
    return {**batch, "t": t, "noise": noise}


def diffusion_loss(
    model: nn.Module,
    schedule: NoiseSchedule,
    batch: dict[str, torch.Tensor],
    cfg: Config,
    gen: torch.Generator | None = None,
) -> torch.Tensor:
    """MPJPE (+ optional velocity term) of the ``y_0`` prediction at random noise levels.

    ``model`` is a :class:`Denoiser` or a :class:`Predictor` (possibly DDP-wrapped); ``batch``
    holds ``keypoints_2d``, ``joints_3d`` and, unless ``gen`` is given to draw them,
    ``t`` and ``noise`` (see :func:`draw_noise`).
    """
    if gen is not None:
        batch = draw_noise(schedule, batch, gen, cfg.diffusion.high_noise_share)
    y0 = batch["joints_3d"]
    y_t = schedule.add_noise(y0, batch["noise"], batch["t"])
    if isinstance(model, Denoiser):
        model = Predictor(model)
    pred = model(batch["keypoints_2d"], y_t, batch["t"])
    loss = mpjpe(pred, y0).mean()
    if cfg.diffusion.velocity_weight > 0:
        loss = loss + cfg.diffusion.velocity_weight * mpjve(pred, y0).mean()
    return loss


class Predictor(nn.Module):
    """The denoiser as one ``forward(keypoints_2d, y_t, t) -> y_0`` call (what DDP wraps)."""

    def __init__(self, denoiser: Denoiser) -> None:
        super().__init__()
        self.denoiser = denoiser

    def forward(
        self, keypoints_2d: torch.Tensor, y_t: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        return self.denoiser(y_t, t, self.denoiser.encode_condition(keypoints_2d))


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This rank's contiguous slice of a global batch."""
        if self.world == 1:
            return batch
        size = next(iter(batch.values())).shape[0] // self.world
        lo = self.rank * size
        return {k: v[lo : lo + size] for k, v in batch.items()}


def init_distributed(device: str) -> tuple[Distributed, str]:
    """Join the torchrun job named by the environment (``WORLD_SIZE`` > 1), if any.

    Returns this rank and its device: gloo on the CPU, NCCL with one GPU per local rank.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(), device
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Distributed(rank, world, local), device


def learning_rate(cfg: Config, step: int) -> float:
    t = cfg.train
    warm = min(1.0, (step + 1) / max(t.warmup_steps, 1))
    if t.lr_schedule == "cosine":
        return t.lr * warm * 0.5 * (1 + math.cos(math.pi * min(step / t.steps, 1.0)))
    return t.lr * warm * t.lr_decay ** (step // t.decay_every)


def _optimizer_tensors(
    opt: torch.optim.Optimizer, model: nn.Module
) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """The optimizer state as ``optim/<parameter name>/<state>`` tensors, plus its groups.

    Keyed by name, not by position, so a resume survives a change in the order in which
    modules register their parameters (a refactor that keeps every weight).
    """
    state = opt.state_dict()
    names = [name for name, _ in model.named_parameters()]
    tensors = {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            tensors[f"optim/{names[idx]}/{key}"] = torch.as_tensor(value)
    groups = [{k: v for k, v in g.items()} for g in state["param_groups"]]
    return tensors, groups


def _restore_optimizer(
    opt: torch.optim.Optimizer,
    model: nn.Module,
    tensors: dict[str, torch.Tensor],
    groups: list[dict],
    where: Path,
) -> None:
    """Load :func:`_optimizer_tensors`' output; refuses state that does not fit the model.

    Checkpoints written before the state was keyed by name hold ``optim/<index>/...``: they
    load when every tensor still has its parameter's shape.
    """
    params = list(model.named_parameters())
    index = {name: i for i, (name, _) in enumerate(params)}
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if not key.startswith("optim/"):
            continue
        owner, _, name = key[len("optim/") :].rpartition("/")
        i = int(owner) if owner.isdigit() else index.get(owner)
        if i is None or i >= len(params):
            raise CheckpointError(f"{where}: optimizer state for an unknown parameter {owner!r}")
        if value.dim() > 0 and value.shape != params[i][1].shape:
            raise CheckpointError(
                f"{where}: optimizer state {name!r} of {params[i][0]} has shape "
                f"{tuple(value.shape)}, the parameter {tuple(params[i][1].shape)}"
            )
        state.setdefault(i, {})[name] = value
    if len(groups) != 1 or len(groups[0].get("params", ())) != len(params):
        raise CheckpointError(f"{where}: its optimizer groups do not fit this model")
    groups = [{**groups[0], "params": list(range(len(params)))}]
    opt.load_state_dict({"state": state, "param_groups": groups})


@torch.no_grad()
def validate(
    model: Denoiser, sampler: DDIMSampler, windows: dict[str, torch.Tensor], batch: int
) -> float:
    """MPJPE in mm with one hypothesis, one step, no flip (D3DP's per-epoch check)."""
    model.eval()
    errs = []
    gen = torch.Generator(device=windows["keypoints_2d"].device).manual_seed(0)
    for i in range(0, len(windows["keypoints_2d"]), batch):
        hyps = sample_hypotheses(
            model, sampler, windows["keypoints_2d"][i : i + batch], 1, False, gen
        )
        errs.append(mpjpe(hyps[:, 0], windows["joints_3d"][i : i + batch]).reshape(-1))
    model.train()
    return float(torch.cat(errs).mean() * 1000)


def validate_all(
    model: Denoiser,
    sampler: DDIMSampler,
    sets: dict[str, dict[str, torch.Tensor]],
    batch: int,
) -> dict[str, float]:
    """:func:`validate` on every validation set; ``val_mpjpe_mm`` is their mean, the number
    checkpoints are kept by (``best.safetensors``)."""
    scores = {
        f"val_{name}_mpjpe_mm": validate(model, sampler, w, batch) for name, w in sets.items()
    }
    return {"val_mpjpe_mm": float(np.mean(list(scores.values()))), **scores}


def _log_records(path: Path) -> list[tuple[str, dict]]:
    """Each readable line of a metrics log with its record; a line cut short by a crash, or
    one that is not a JSON object, is skipped (never an error: the log is a by-product)."""
    records = []
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(record, dict):
                records.append((line, record))
    return records


def _best_logged(path: Path) -> float:
    """The best ``val_mpjpe_mm`` in a (trimmed) metrics log, for a resumed run."""
    best = math.inf
    for _, record in _log_records(path):
        try:
            best = min(best, float(record.get("val_mpjpe_mm", math.inf)))
        except (TypeError, ValueError):
            continue
    return best


def _append_log(path: Path, record: dict) -> None:
    """Append one JSON line; a crash mid-line is cleaned up by :func:`_trim_log` on resume."""
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise HtposeError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _trim_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint being resumed from."""
    if not path.exists():
        return
    keep = []
    for line, record in _log_records(path):
        logged = record.get("step", 0)
        if isinstance(logged, (int, float)) and logged <= step:
            keep.append(line)
    atomic_write(path, lambda fh: fh.write(("\n".join(keep) + "\n" if keep else "").encode()))


@dataclass
class _RunFiles:
    """The files of one run folder."""

    out: Path

    @property
    def last(self) -> Path:
        return self.out / "last.safetensors"

    @property
    def previous(self) -> Path:
        return self.out / "previous.safetensors"

    @property
    def log(self) -> Path:
        return self.out / "metrics.jsonl"

    @property
    def model(self) -> Path:
        return self.out / "model.safetensors"

    @property
    def best(self) -> Path:
        return self.out / "best.safetensors"


class _TrainingRun:
    """The state of one training run: model, optimizer, run folder, clock and best score.

    One method per thing that happens in the loop (a step, a log line, a checkpoint), so
    :func:`train` reads as the loop itself.
    """

    def __init__(self, cfg: Config, files: _RunFiles, dist_info: Distributed, device: str) -> None:
        self.cfg, self.files, self.dist, self.device = cfg, files, dist_info, device
        torch.manual_seed(cfg.train.seed)
        self.model = build_denoiser(cfg.model).to(device)
        self.schedule = NoiseSchedule(cfg.diffusion.timesteps, cfg.diffusion.schedule)
        self.val_sampler = DDIMSampler(
            self.schedule, 1, cfg.diffusion.eta, cfg.diffusion.clip_denoised
        )
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay
        )
        # Wall and CPU seconds of the steps: wall time overstates the compute of a run that
        # shares its cores, CPU time (all threads) is what runs are compared by.
        self.start, self.elapsed, self.cpu_seconds, self.best_mm = 0, 0.0, 0.0, math.inf
        self.step_seconds: list[float] = []  # wall time of this process's first steps
        self.predictor: nn.Module = Predictor(self.model)

    def distribute(self) -> None:
        """Wrap the predictor in DistributedDataParallel under torchrun (after resuming,
        so every rank starts from the loaded weights)."""
        if self.dist.world > 1:
            self.predictor = nn.parallel.DistributedDataParallel(
                self.predictor,
                device_ids=[self.device] if self.device.startswith("cuda") else None,
            )

    def resume(self) -> bool:
        """Load the newest readable checkpoint of the folder; False where there is none."""
        found = _resume_point(self.files.last, self.files.previous)
        if found is None:
            return False
        tensors, saved_cfg, meta = found
        if not _same_model(saved_cfg.model, self.cfg.model):
            raise CheckpointError(
                f"{self.files.last} was trained with another model config; use a new output folder"
            )
        load_weights(self.model, model_state(tensors), self.files.last)
        tensors = {k: v.to(self.device) for k, v in tensors.items()}
        _restore_optimizer(self.opt, self.model, tensors, meta["optimizer_groups"], self.files.last)
        self.start, self.elapsed = int(meta["step"]), float(meta.get("train_seconds", 0.0))
        self.cpu_seconds = float(meta.get("cpu_seconds", 0.0))  # older checkpoints lack it
        return True

    def init_from(self, path: Path) -> list[str]:
        """Start from another run's (or the bundled model's) weights: a fresh optimizer and
        schedule; the parameters that model lacked are added, and a shorter temporal kernel
        widened (:func:`load_grown_weights`)."""
        tensors, saved_cfg, _ = read_checkpoint(path)
        grown = {k: getattr(self.cfg.model, k) for k in self.cfg.model.GROWABLE}
        saved = replace(saved_cfg.model, **grown)
        if not _same_model(saved, self.cfg.model):
            raise CheckpointError(
                f"{path} was trained with another model size or pruning; --init-from "
                "needs the same model (model.pose_context, with its options, may be added)"
            )
        return load_grown_weights(self.model, model_state(tensors), path)

    def prepare_folder(self, resumed: bool) -> None:
        """Write the config; trim a resumed run's log to its checkpoint (rank 0 only)."""
        if not self.dist.main:
            return
        _prepare_run_folder(self.files.out, self.cfg)
        if resumed:
            _trim_log(self.files.log, self.start)
            self.best_mm = _best_logged(self.files.log)
        elif self.files.log.exists():  # a log without checkpoints: a run that never got far
            self.files.log.unlink()

    def step(self, step: int, draws: tuple[int, int, dict[str, torch.Tensor]]) -> torch.Tensor:
        """One optimizer step on the step's draws (:class:`StepBatches`); returns the loss."""
        cfg = self.cfg
        noise_seed, torch_seed, batch = draws
        gen = torch.Generator().manual_seed(noise_seed)
        # Drop-path draws from the global generator; offset per rank so shards differ.
        torch.manual_seed(torch_seed + self.dist.rank)
        batch = draw_noise(self.schedule, batch, gen, cfg.diffusion.high_noise_share)
        batch = {k: v.to(self.device) for k, v in self.dist.shard(batch).items()}
        for group in self.opt.param_groups:
            group["lr"] = learning_rate(cfg, step)
        loss = diffusion_loss(self.predictor, self.schedule, batch, cfg)
        if not torch.isfinite(loss):
            raise TrainingDiverged(step, f"loss {loss.item()}", self.files.last)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.train.grad_clip)
        self.opt.step()
        return loss.detach()

    def log(self, done: int, losses: list[torch.Tensor], val_sets: dict) -> dict | None:
        """Append the log line for step ``done`` (validating when due); rank 0's record."""
        mean_loss = _mean_over_ranks(torch.stack(losses).mean(), self.dist)
        if not self.dist.main:
            return None
        cfg = self.cfg
        record = {
            "step": done,
            "loss_mm": 1000 * mean_loss,
            "lr": learning_rate(cfg, done - 1),
            "train_seconds": round(self.elapsed, 2),
            "cpu_seconds": round(self.cpu_seconds, 2),
        }
        if done % cfg.train.val_every == 0 or done == cfg.train.steps:
            record.update(
                validate_all(self.model, self.val_sampler, val_sets, cfg.eval.batch_windows)
            )
            if not math.isfinite(record["val_mpjpe_mm"]):
                raise TrainingDiverged(done, "validation error not finite", self.files.last)
            if record["val_mpjpe_mm"] < self.best_mm:
                self.best_mm = record["val_mpjpe_mm"]
                meta = {"step": done, "val_mpjpe_mm": self.best_mm, **self._clock()}
                save_checkpoint(self.files.best, self.model, cfg, meta=meta)
        _append_log(self.files.log, record)
        return record

    def checkpoint(self, step: int) -> None:
        """Write ``last`` (retiring the one before to ``previous``) and ``model`` (rank 0)."""
        if not self.dist.main:
            return
        last, previous = self.files.last, self.files.previous
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise TrainingDiverged(step, "weights no longer finite", last)
        tensors, groups = _optimizer_tensors(self.opt, self.model)
        meta = {"step": step, "optimizer_groups": groups, **self._clock()}
        retired = last.exists()
        if retired:
            # The one before stays as a fallback should `last` ever be damaged on disk.
            os.replace(last, previous)
        try:
            save_checkpoint(last, self.model, self.cfg, tensors, meta)
        except HtposeError:
            if retired:  # e.g. a full disk: put the last good checkpoint back in its place
                os.replace(previous, last)
            raise
        save_checkpoint(
            self.files.model,
            self.model,
            self.cfg,
            meta={"step": step, **self._clock()},
        )

    def _clock(self) -> dict[str, float]:
        return {"train_seconds": self.elapsed, "cpu_seconds": self.cpu_seconds}


def _check_training_memory(cfg: Config) -> None:
    """Refuse a training batch the memory budget cannot hold."""
    m = cfg.model
    budget.check(
        budget.forward_bytes(cfg.train.batch_size, m.frames, m.joints, m.width, m.heads, True)
        * m.depth,
        f"training batches of {cfg.train.batch_size} windows of {m.frames} frames",
    )


def _check_batch_split(cfg: Config, dist_info: Distributed) -> None:
    """Refuse a global batch the ranks cannot share evenly."""
    if cfg.train.batch_size % dist_info.world:
        raise ConfigError(
            f"train.batch_size {cfg.train.batch_size} must be divisible by the "
            f"{dist_info.world} processes of this torchrun job"
        )


def train(
    cfg: Config,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    stop_at: int | None = None,
    device: str = "cpu",
    minutes: float | None = None,
    init_from: str | Path | None = None,
) -> Path:
    """Train per ``cfg`` into ``out_dir``; returns the path of ``model.safetensors``.

    ``init_from`` starts a new run from that checkpoint's weights (fine-tuning, or growing
    a trained model by ``model.pose_context``); a run the folder already holds is resumed
    with ``resume=True`` instead, so the same command continues an interrupted fine-tune.

    ``stop_at`` ends this run after that step (with a checkpoint) while the schedule still
    aims at ``train.steps``: a later ``resume=True`` run carries on as if never stopped.
    ``minutes`` sizes a new run to the time it may take instead: the first steps (inside the
    warm-up) are timed, ``train.steps`` is set so that the run ends within ``minutes`` of its
    start (validation included), and the chosen steps are written to ``config.yaml`` and the
    log. Those first steps used the learning rate of the configured ``train.steps``; the
    difference is below 1e-4 of the rate.
    Under ``torchrun`` every rank calls this; ``train.batch_size`` is the global batch.
    """
    began = time.perf_counter()
    _check_training_memory(cfg)
    _check_time_budget(cfg, minutes, stop_at)
    dist_info, device = init_distributed(device)
    _check_batch_split(cfg, dist_info)
    # Everything that can fail on the input runs before the run folder is touched.
    data = StepBatches(training_sampler(cfg), cfg)
    val_sets = {
        name: {k: v.to(device) for k, v in windows.items()}
        for name, windows in validation_sets(cfg).items()
    }
    files = _RunFiles(Path(out_dir))
    if not resume and dist_info.main and (files.last.exists() or files.previous.exists()):
        raise HtposeError(
            f"{files.out} already holds a training run; pass --resume to continue it, or "
            "choose another --out (nothing was changed)"
        )
    run = _TrainingRun(cfg, files, dist_info, device)
    resumed = resume and run.resume()
    grown = None if resumed or init_from is None else run.init_from(Path(init_from))
    if resumed and minutes is not None:
        raise HtposeError(
            f"{files.out} holds a run whose steps are set; resume it without --minutes "
            "(--steps changes its length)"
        )
    run.prepare_folder(resumed=resumed)
    if grown is not None and dist_info.main:
        _append_log(files.log, {"step": 0, "init_from": str(init_from), "grown": grown})
    run.distribute()

    run.model.train()
    end = cfg.train.steps if stop_at is None else min(stop_at, cfg.train.steps)
    bar = tqdm(
        total=cfg.train.steps,
        initial=run.start,
        disable=not progress or not dist_info.main,
        desc="train",
        dynamic_ncols=True,
    )
    if minutes is not None:
        timed = min(_TIMED_STEPS, cfg.train.steps)
        _run_steps(run, data, timed, val_sets, bar)
        _choose_steps(run, minutes * 60 - (time.perf_counter() - began), timed, val_sets)
        bar.total = end = cfg.train.steps
        bar.refresh()
    _run_steps(run, data, end, val_sets, bar)
    bar.close()
    if run.start >= cfg.train.steps and not files.model.exists():
        run.checkpoint(run.start)
    if dist_info.world > 1:
        _check_ranks_in_sync(run.model, dist_info, files.log, end)
    return files.model


# Steps timed by ``--minutes`` (the first few of them, which warm caches up, not counted).
_TIMED_STEPS, _UNTIMED_STEPS = 40, 8


def _check_time_budget(cfg: Config, minutes: float | None, stop_at: int | None) -> None:
    if minutes is None:
        return
    if not 0 < minutes <= 10**6:
        raise ConfigError(f"--minutes must be in (0, 1e6], got {minutes}")
    if stop_at is not None:
        raise ConfigError("--minutes and --stop-at do not go together")
    if cfg.train.warmup_steps < _TIMED_STEPS:
        raise ConfigError(
            f"--minutes times the first {_TIMED_STEPS} steps inside the warm-up: "
            f"train.warmup_steps must be at least {_TIMED_STEPS}"
        )


def _choose_steps(run: _TrainingRun, seconds_left: float, timed: int, val_sets: dict) -> None:
    """Set ``train.steps`` so that the run ends in ``seconds_left`` (rank 0 decides)."""
    t = run.cfg.train
    step_s = float(np.mean(run.step_seconds[_UNTIMED_STEPS:timed]))
    tick = time.perf_counter()
    validate_all(run.model, run.val_sampler, val_sets, run.cfg.eval.batch_windows)
    val_s = time.perf_counter() - tick
    per_step = step_s + val_s / t.val_every
    # 5 % to spare for checkpoints and for steps slower than the timed ones.
    chosen = timed + max(int(0.95 * (seconds_left - 2 * val_s) / per_step), 0)
    t.steps = _from_rank0(chosen, run.dist)
    if not run.dist.main:
        return
    _write_config(run.files.out, run.cfg)
    choice = {"step": timed, "steps_chosen": t.steps, "step_seconds": round(step_s, 4),
              "val_seconds": round(val_s, 2), "seconds_left": round(seconds_left, 1)}  # fmt: skip
    _append_log(run.files.log, choice)
    print(
        f"htpose: {t.steps} steps fit the time given ({step_s:.3f} s a step, "
        f"{val_s:.1f} s a validation)",
        file=sys.stderr,
    )


def _from_rank0(value: int, dist_info: Distributed) -> int:
    """Rank 0's ``value`` on every rank (each rank times its own steps)."""
    if dist_info.world == 1:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return int(box[0])


def _run_steps(run: _TrainingRun, data: StepBatches, end: int, val_sets: dict, bar: tqdm) -> None:
    """Steps ``run.start .. end - 1`` with their logs and checkpoints; advances ``run.start``."""
    cfg, losses = run.cfg, []
    draws = step_draws(data, run.start, end, cfg.train.loader_workers)
    for step in range(run.start, end):
        tick, cpu_tick = time.perf_counter(), time.process_time()
        losses.append(run.step(step, next(draws)))
        seconds = time.perf_counter() - tick
        run.elapsed += seconds
        run.cpu_seconds += time.process_time() - cpu_tick
        if len(run.step_seconds) < _TIMED_STEPS:  # only the first steps are ever timed
            run.step_seconds.append(seconds)
        run.start = done = step + 1
        bar.update(1)
        if done % cfg.train.log_every == 0 or done == cfg.train.steps:
            record = run.log(done, losses, val_sets)
            losses = []
            if record is not None:
                bar.set_postfix(loss_mm=f"{record['loss_mm']:.1f}")
        if done % cfg.train.checkpoint_every == 0 or done in (cfg.train.steps, end):
            run.checkpoint(done)


def _prepare_run_folder(out: Path, cfg: Config) -> None:
    """Create the run folder, drop half-written files of a killed run, write the config."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HtposeError(f"cannot create run folder {out}: {exc.strerror or exc}") from exc
    for stale in out.glob(".*.tmp"):
        stale.unlink(missing_ok=True)
    _write_config(out, cfg)


def _write_config(out: Path, cfg: Config) -> None:
    atomic_write(out / "config.yaml", lambda fh: fh.write(dump_config(cfg).encode()))


def _same_model(a, b) -> bool:
    """Whether two model configs describe the same network, the frame choice while training
    aside (it has no weights, so a run may resume on other plans)."""

    def plain(m):
        return replace(m, pruning=replace(m.pruning, train_scoring=None))

    return plain(a) == plain(b)


def _resume_point(
    last: Path, previous: Path
) -> tuple[dict[str, torch.Tensor], Config, dict] | None:
    """The newest readable training checkpoint: ``last``, else ``previous``, else none.

    Writes are atomic, so ``last`` is normally whole; ``previous`` covers a kill between
    the rename that retires ``last`` and the write of the new one, and a file damaged later.
    """
    if not last.exists() and not previous.exists():
        return None
    try:
        return read_checkpoint(last)
    except CheckpointError as exc:
        if not previous.exists():
            raise
        reason = str(exc)
    found = read_checkpoint(previous)
    print(f"htpose: warning: {reason}; resuming from {previous.name}", file=sys.stderr)
    return found


def _mean_over_ranks(value: torch.Tensor, dist_info: Distributed) -> float:
    if dist_info.world > 1:
        import torch.distributed as dist

        value = value.clone()
        dist.all_reduce(value)
        value /= dist_info.world
    return float(value)


def _check_ranks_in_sync(
    model: Denoiser, dist_info: Distributed, log_path: Path, step: int
) -> None:
    """Compare every rank's weights with rank 0's; log the largest difference, fail if any."""
    import torch.distributed as dist

    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    reference = flat.clone()
    dist.broadcast(reference, src=0)
    diff = (flat - reference).abs().max()
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    if dist_info.main:
        _append_log(
            log_path,
            {"step": step, "world_size": dist_info.world, "ddp_max_weight_diff": float(diff)},
        )
    dist.barrier()
    if float(diff) != 0.0:
        raise RuntimeError(f"ranks ended with different weights (max difference {float(diff)})")
