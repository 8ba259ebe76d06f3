"""Evaluating a lifter on labelled sequences: sample once, aggregate many ways, tabulate.

The largest requested hypothesis count is sampled once; smaller counts use its first
hypotheses (they are independent draws), so ``H = 1, 5, 20`` cost one ``H = 20`` run.
Each sequence is covered by windows (consecutive, or overlapping and blended: ``overlap``),
and every frame counts once in the metrics.
"""

from __future__ import annotations

import time
from collections.abc import Sequence as Seq
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from tqdm import tqdm

from htpose import budget
from htpose.aggregation import ORACLE_AGGREGATIONS, aggregate
from htpose.config import MAX_HYPOTHESES, Config
from htpose.data.camera import normalize_keypoints
from htpose.data.sequences import DetectorNoise, Sequence, noise_seed, person_scale
from htpose.data.temporal import (
    blend_windows,
    check_median_window,
    check_overlap,
    median_filter_frames,
    split_windows,
)
from htpose.diffusion.ddim import DDIMSampler
from htpose.diffusion.pipeline import flip_mode, flip_passes, sample_hypotheses
from htpose.errors import HtposeError
from htpose.metrics import ErrorTable, auc, joint_errors, mpjpe, mpjve, p_mpjpe
from htpose.model.denoiser import Denoiser


@dataclass
class EvalResult:
    """Tables keyed by ``(aggregation, hypotheses)`` and the speed of the sampling."""

    tables: dict[tuple[str, int], ErrorTable] = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0
    # Per joint and frame, for calibration: error of the mean of all hypotheses and their
    # spread (RMS distance from that mean), metres, ``(N, J)`` each.
    mean_errors: np.ndarray | None = None
    spread: np.ndarray | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def add_noise(sequences: Seq[Sequence], noise: DetectorNoise, seed: int = 0) -> list[Sequence]:
    """Copies of ``sequences`` with detector noise fixed by each sequence's name."""
    out = []
    for s in sequences:
        noisy = noise.apply(
            s.keypoints_2d, noise_seed(s.name, seed), scale=person_scale(s.keypoints_2d)
        )
        out.append(Sequence(s.name, s.action, noisy, s.camera, s.joints_3d, s.root, s.valid))
    return out


def check_sampling(
    cfg: Config, hypotheses: Seq[int], steps: int, flip_test: bool | str, batch_windows: int
) -> int:
    """Refuse sampling settings that are out of range or beyond the memory budget; returns
    the batch of windows that fits. Cheap: callers run it before reading any data."""
    if not hypotheses or not all(1 <= h <= MAX_HYPOTHESES for h in hypotheses):
        raise HtposeError(f"hypotheses must each be in [1, {MAX_HYPOTHESES}], got {hypotheses}")
    if not 1 <= steps <= cfg.diffusion.timesteps:
        raise HtposeError(f"steps must be in [1, {cfg.diffusion.timesteps}], got {steps}")
    m = cfg.model
    passes = max(hypotheses) * flip_passes(flip_mode(flip_test, cfg.diffusion.flip_mode))
    return budget.fit_batch(batch_windows, passes, m.frames, m.joints, m.width, m.heads)


def _check_sequences(sequences: Seq[Sequence], aggregations: Seq[str]) -> None:
    if any(s.joints_3d is None for s in sequences):
        raise HtposeError("evaluation needs 3D ground truth for every sequence")
    if "jpma" in aggregations and any(not s.camera.calibrated for s in sequences):
        raise HtposeError("jpma needs calibrated cameras; this data set has none (use mean)")


@dataclass
class _Windows:
    """Every window of every sequence, for batching across sequences.

    ``parts[s]`` holds sequence ``s``'s normalised 2D, target 3D, pixels and root, each
    ``(N, F, ...)``; ``starts[s]`` the first frame of each window; ``items`` every
    ``(sequence, window)`` pair in order.
    """

    parts: list[list[np.ndarray]]
    starts: list[list[int]]
    items: list[tuple[int, int]]

    def gather(self, part: int, chunk: list[tuple[int, int]]) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.parts[s][part][w] for s, w in chunk]))


def _cut_windows(sequences: Seq[Sequence], cfg: Config, overlap: float) -> _Windows:
    cut_all = _Windows([], [], [])
    for si, seq in enumerate(sequences):
        raw = [seq.joints_3d, seq.keypoints_2d, seq.root]
        cut = [split_windows(np.asarray(p, np.float32), cfg.model.frames, overlap) for p in raw]
        cam = seq.camera
        x2d = normalize_keypoints(
            torch.from_numpy(cut[1][0]), cam.width, cam.height, cfg.data.normalization
        ).numpy()
        cut_all.parts.append([x2d] + [c[0] for c in cut])
        cut_all.starts.append(cut[0][1])
        cut_all.items.extend((si, wi) for wi in range(len(cut[0][1])))
    return cut_all


@torch.no_grad()
def evaluate(
    model: Denoiser,
    cfg: Config,
    sequences: Seq[Sequence],
    hypotheses: Seq[int] = (20,),
    steps: int = 10,
    aggregations: Seq[str] = ("mean",),
    flip_test: bool | str = True,
    seed: int = 0,
    batch_windows: int = 16,
    pck: bool = False,
    progress: bool = True,
    overlap: float | None = None,
    median_2d: int | None = None,
) -> EvalResult:
    """Per-action error tables for every (aggregation, H) pair; see the module docstring.

    ``overlap`` (default ``eval.overlap`` of the config): windows overlap by this share and
    are blended (:func:`~htpose.data.temporal.blend_windows`); 0 predicts every frame once.
    ``median_2d`` (default ``eval.median_2d``): the 2D's running-median window, as lifting
    applies it.
    """
    overlap = cfg.eval.overlap if overlap is None else overlap
    batch_windows = check_sampling(cfg, hypotheses, steps, flip_test, batch_windows)
    check_overlap(overlap)
    _check_sequences(sequences, aggregations)
    sequences = filter_keypoints(sequences, cfg.eval.median_2d if median_2d is None else median_2d)
    metrics = ("mpjpe_mm", "p_mpjpe_mm", "mpjve_mm") + (("pck", "auc") if pck else ())
    result = EvalResult({(a, h): ErrorTable(metrics) for a in aggregations for h in hypotheses})
    windows = _cut_windows(sequences, cfg, overlap)
    sampler = DDIMSampler.from_config(cfg.diffusion, steps)
    preds = _predict_windows(
        model, sampler, cfg, sequences, windows, result, flip_test, seed, batch_windows, progress,
    )  # fmt: skip
    result.frames = sum(len(s) for s in sequences)
    result.mean_errors, result.spread = _errors_and_spread(
        preds.pop("spread"), windows.starts, sequences
    )
    for key, table in result.tables.items():
        for si, seq in enumerate(sequences):
            pred = blend_windows(preds[key][si], windows.starts[si], len(seq))
            table.add(seq.action, **_sequence_errors(pred, seq, pck))
    return result


@torch.no_grad()
def predict_sequences(
    model: Denoiser,
    cfg: Config,
    sequences: Seq[Sequence],
    hypotheses: int = 20,
    steps: int | None = None,
    flip_test: bool | str = True,
    seed: int = 0,
    overlap: float | None = None,
    batch_windows: int = 16,
    median_2d: int | None = None,
) -> list[np.ndarray]:
    """The mean of ``hypotheses`` for every frame of every sequence, ``(T, J, 3)`` each,
    pelvis-relative metres in camera axes: what :func:`evaluate` scores with the same
    settings (the noise depends on the batching), for analyses of the poses themselves."""
    steps = cfg.diffusion.sampling_steps if steps is None else steps
    overlap = cfg.eval.overlap if overlap is None else overlap
    check_overlap(overlap)
    sequences = filter_keypoints(sequences, cfg.eval.median_2d if median_2d is None else median_2d)
    batch = check_sampling(cfg, (hypotheses,), steps, flip_test, batch_windows)
    result = EvalResult({("mean", hypotheses): ErrorTable(("mpjpe_mm",))})
    windows = _cut_windows(sequences, cfg, overlap)
    sampler = DDIMSampler.from_config(cfg.diffusion, steps)
    preds = _predict_windows(
        model, sampler, cfg, sequences, windows, result, flip_test, seed, batch, False,
    )  # fmt: skip
    out = []
    for si, seq in enumerate(sequences):
        pred = blend_windows(preds[("mean", hypotheses)][si], windows.starts[si], len(seq))
        out.append(pred - pred[:, :1])
    return out


def _predict_windows(
    model: Denoiser,
    sampler: DDIMSampler,
    cfg: Config,
    sequences: Seq[Sequence],
    windows: _Windows,
    result: EvalResult,
    flip_test: bool | str,
    seed: int,
    batch_windows: int,
    progress: bool,
) -> dict:
    """Sample every window once with the most hypotheses, aggregate each requested way.

    Returns per table key (and ``"spread"``: the hypotheses' mean, 3 channels, and spread,
    1) a list over sequences of ``(N, F, J, C)`` windows; adds the sampling time to
    ``result.seconds``.
    """
    frames, device = cfg.model.frames, next(model.parameters()).device
    flip = flip_mode(flip_test, cfg.diffusion.flip_mode)
    h_max = max(h for _, h in result.tables)
    gen = torch.Generator(device=device).manual_seed(seed)
    counts = [len(p[0]) for p in windows.parts]
    preds: dict = {key: [np.zeros((n, frames, 17, 3), np.float32) for n in counts]
                   for key in result.tables}  # fmt: skip
    preds["spread"] = [np.zeros((n, frames, 17, 4), np.float32) for n in counts]
    items = windows.items
    bar = tqdm(
        total=len(items), desc="evaluate", unit="window", disable=not progress, dynamic_ncols=True
    )
    for i in range(0, len(items), batch_windows):
        chunk = items[i : i + batch_windows]
        x2d, target, pixels, root = (windows.gather(p, chunk) for p in range(4))
        intr = torch.stack([sequences[s].camera.intrinsics() for s, _ in chunk]).float()
        tick = time.perf_counter()
        hyps = sample_hypotheses(model, sampler, x2d.to(device), h_max, flip, gen).cpu()
        result.seconds += time.perf_counter() - tick
        centre = hyps.mean(dim=1)
        spread = (hyps - centre[:, None]).pow(2).sum(-1).mean(1).sqrt()
        for (s, w), mu, sd in zip(chunk, centre.numpy(), spread.numpy()):
            preds["spread"][s][w] = np.concatenate([mu, sd[..., None]], -1)
        for agg, h in result.tables:
            truth = target if agg in ORACLE_AGGREGATIONS else None
            out = aggregate(agg, hyps[:, :h], truth, pixels, intr, root, cfg.data.distortion)
            for (s, w), pose in zip(chunk, out.numpy()):
                preds[(agg, h)][s][w] = pose
        bar.update(len(chunk))
    bar.close()
    return preds


def _sequence_errors(pred: np.ndarray, seq: Sequence, pck: bool) -> dict[str, np.ndarray]:
    """Per-frame errors (mm; PCK/AUC per frame) of one blended ``(T, J, 3)`` prediction,
    root-relative, over the sequence's valid frames."""
    pred_t = torch.from_numpy(pred - pred[:, :1]).double()
    gt = torch.from_numpy(seq.joints_3d).double()
    valid = np.ones(len(seq), bool) if seq.valid is None else seq.valid
    values = {
        "mpjpe_mm": 1000 * mpjpe(pred_t, gt).numpy()[valid],
        "p_mpjpe_mm": 1000 * p_mpjpe(pred_t, gt).numpy()[valid],
        "mpjve_mm": 1000 * mpjve(pred_t, gt).numpy()[valid[1:]] if len(seq) > 1 else np.zeros(0),
    }
    if pck:
        from htpose.data.mpi3dhp import PCK_JOINTS

        errs = 1000 * joint_errors(pred_t, gt).numpy()[valid][:, PCK_JOINTS]
        values["pck"] = np.array([100 * (e < 150).mean() for e in errs])
        values["auc"] = np.array([auc(e[None]) for e in errs])
    return values


def _errors_and_spread(
    packed: list[np.ndarray], starts: list[list[int]], sequences: Seq[Sequence]
) -> tuple[np.ndarray, np.ndarray]:
    """Blend the windows' (mean, spread) back to frames; the mean's error per joint."""
    errors, spreads = [], []
    for win, st, seq in zip(packed, starts, sequences):
        whole = blend_windows(win, st, len(seq))
        mean, spread = whole[..., :3], whole[..., 3]
        mean = mean - mean[:, :1]
        valid = np.ones(len(seq), bool) if seq.valid is None else seq.valid
        errors.append(np.linalg.norm(mean - seq.joints_3d, axis=-1)[valid])
        spreads.append(spread[valid])
    return np.concatenate(errors), np.concatenate(spreads)


def result_json(result: EvalResult, primary: tuple[str, int], extra: dict | None = None) -> dict:
    """The ``--json`` document: the primary result at the top level, every pair in ``results``."""
    doc = dict(result.tables[primary].summary())
    doc.update({"aggregate": primary[0], "hypotheses": primary[1], "fps": result.fps})
    doc["results"] = [
        {"aggregate": a, "hypotheses": h, **table.summary()}
        for (a, h), table in result.tables.items()
    ]
    if extra:
        doc.update(extra)
    return doc


def filter_keypoints(sequences: Seq[Sequence], median_2d: int) -> list[Sequence]:
    """Copies of ``sequences`` whose 2D ``(T, J, 2)`` is median-filtered over ``median_2d``
    frames (:func:`~htpose.data.temporal.median_filter_frames`); the same ones when off."""
    check_median_window(median_2d)
    if median_2d <= 1:
        return list(sequences)
    return [
        replace(s, keypoints_2d=median_filter_frames(s.keypoints_2d, median_2d)) for s in sequences
    ]


def noise_from_config(cfg: Config) -> DetectorNoise:
    return DetectorNoise(**asdict(cfg.data.noise))
