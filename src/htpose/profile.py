"""Parameters, MACs and speed of a denoiser configuration.

Inference MACs: every denoiser call of a DDIM run costs the same and every op is per
sample, so one call on one hypothesis is counted and multiplied by H x K (x2 with flip),
and the 2D-only part (embedding, TCEP) is counted once (twice with flip) on top: the same
number a count of the whole run gives, without running a paper-size model 400 times.

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (MACs = FLOPs / 2) with
the math attention backend forced: on the CPU the fused attention kernel has no FLOP
formula and would be missed. Two totals are given: ``all`` (every matrix product) and
``linear`` (matrix products of linear layers only, ``mm``/``addmm``; the attention score and
value products run as batched ``bmm`` and are left out), the convention of published
tables that count with module hooks.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from htpose import budget
from htpose.config import Config
from htpose.diffusion.ddim import DDIMSampler
from htpose.diffusion.pipeline import flip_mode, flip_passes, sample_hypotheses
from htpose.model.denoiser import Denoiser, build_denoiser

LINEAR_OPS = ("mm", "addmm")


@dataclass
class Profile:
    params_m: float
    train_gmacs: float
    train_gmacs_linear: float
    infer_gmacs: float
    infer_gmacs_linear: float
    fps: float | None = None
    train_step_s: float | None = None
    # Peak GPU memory of one call above what was allocated before it (weights and
    # optimizer-free state of both models), MiB; None on the CPU.
    infer_peak_mib: float | None = None
    train_peak_mib: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return dict(self.__dict__)


def count_macs(fn) -> tuple[float, float]:
    """(all, linear-only) MACs of running ``fn()``."""
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        fn()
    by_op = counter.get_flop_counts().get("Global", {})
    total = sum(by_op.values()) / 2
    linear = (
        sum(
            v
            for op, v in by_op.items()
            if str(op).removeprefix("aten.").split(".")[0] in LINEAR_OPS
        )
        / 2
    )
    return float(total), float(linear)


def _inputs(cfg: Config, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    f, j = cfg.model.frames, cfg.model.joints
    return torch.randn(batch, f, j, 2, generator=gen) * 0.5, torch.randn(
        batch, f, j, 3, generator=gen
    ) * 0.3


def _train_step(model: Denoiser, cfg: Config, batch: int, device: str = "cpu"):
    x, y = (v.to(device) for v in _inputs(cfg, batch))
    t = torch.randint(0, cfg.diffusion.timesteps, (batch,)).to(device)

    def run() -> None:
        model.train()
        model.zero_grad(set_to_none=True)
        pred = model(y, t, model.encode_condition(x))
        (pred - y).norm(dim=-1).mean().backward()

    return run


@torch.no_grad()
def inference_macs(
    model: Denoiser, cfg: Config, hypotheses: int, steps: int, flip: bool | str
) -> tuple[float, float]:
    """(all, linear-only) MACs of sampling H hypotheses with K steps for one window."""
    model.eval()
    x, y = _inputs(cfg, 1)
    cond_all, cond_lin = count_macs(lambda: model.encode_condition(x))
    cond = model.encode_condition(x)
    t = torch.full((1,), cfg.diffusion.timesteps - 1)
    call_all, call_lin = count_macs(lambda: model(y, t, cond))
    views = 2 if flip_mode(flip) != "none" else 1  # the 2D is encoded plain and mirrored
    calls = hypotheses * steps * flip_passes(flip)
    return calls * call_all + views * cond_all, calls * call_lin + views * cond_lin


def _inference(
    model: Denoiser, cfg: Config, hypotheses: int, steps: int, flip: bool, device: str = "cpu"
):
    x, _ = _inputs(cfg, 1)
    x = x.to(device)
    sampler = DDIMSampler.from_config(cfg.diffusion, steps)

    def run() -> None:
        model.eval()
        gen = torch.Generator(device=device).manual_seed(0)
        sample_hypotheses(model, sampler, x, hypotheses, flip, gen)
        if device != "cpu":
            torch.cuda.synchronize()

    return run


def check_profile_sizes(
    cfg: Config, hypotheses: int, steps: int, flip: bool, train_batch: int, timing_runs: int
) -> None:
    """Refuse settings that would take more memory or time than any profile needs."""
    from htpose.config import MAX_HYPOTHESES
    from htpose.errors import HtposeError

    if not 1 <= hypotheses <= MAX_HYPOTHESES or not 1 <= steps <= cfg.diffusion.timesteps:
        raise HtposeError(
            f"--hypotheses must be in [1, {MAX_HYPOTHESES}] and --steps in "
            f"[1, {cfg.diffusion.timesteps}]"
        )
    if not 0 <= timing_runs <= 1000 or not 1 <= train_batch <= 10_000:
        raise HtposeError("--time must be in [0, 1000] and --train-batch in [1, 10000]")
    m = cfg.model
    passes = hypotheses * flip_passes(flip)
    budget.check(
        budget.forward_bytes(passes, m.frames, m.joints, m.width, m.heads),
        f"profiling {hypotheses} hypotheses of {m.frames} frames",
    )
    budget.check(
        budget.forward_bytes(train_batch, m.frames, m.joints, m.width, m.heads, True) * m.depth,
        f"a training step of {train_batch} windows",
    )


def profile_config(
    cfg: Config,
    hypotheses: int | None = None,
    steps: int | None = None,
    flip_test: bool | None = None,
    train_batch: int = 1,
    timing_runs: int = 0,
) -> Profile:
    """Params, MACs of one training step (``train_batch`` windows, forward + backward) and
    of one full inference of one window (H hypotheses x K steps, x2 with flip), and
    optionally the inference speed in frames per second (median of ``timing_runs``)."""
    h = hypotheses or cfg.diffusion.hypotheses
    k = steps or cfg.diffusion.sampling_steps
    flip = cfg.diffusion.flip_test if flip_test is None else flip_test
    flip = flip_mode(flip, cfg.diffusion.flip_mode)
    check_profile_sizes(cfg, h, k, flip, train_batch, timing_runs)
    model = build_denoiser(cfg.model)
    train_all, train_lin = count_macs(_train_step(model, cfg, train_batch))
    infer_all, infer_lin = inference_macs(model, cfg, h, k, flip)
    prof = Profile(
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        train_gmacs=train_all / 1e9,
        train_gmacs_linear=train_lin / 1e9,
        infer_gmacs=infer_all / 1e9,
        infer_gmacs_linear=infer_lin / 1e9,
    )
    if timing_runs > 0:
        prof.fps = cfg.model.frames / median_seconds(
            _inference(model, cfg, h, k, flip), timing_runs
        )
    return prof


def compare(
    baseline: Config,
    pruned: Config,
    hypotheses: int | None = None,
    steps: int | None = None,
    train_batch: int = 1,
    timing_runs: int = 5,
    device: str = "cpu",
) -> dict:
    """Baseline and pruned side by side: MACs of each, and the inference speed and training
    step time timed alternately in this process (one baseline run, one pruned run, repeated;
    medians; on a GPU also peak memory), with the ratios."""
    if baseline.model.frames != pruned.model.frames:
        raise ValueError("the two configs must use the same window length")
    h = hypotheses or baseline.diffusion.hypotheses
    k = steps or baseline.diffusion.sampling_steps
    flip = baseline.diffusion.flip_mode if baseline.diffusion.flip_test else "none"
    profiles = [profile_config(c, h, k, flip, train_batch) for c in (baseline, pruned)]
    if timing_runs > 0:
        pair = (baseline, pruned)
        _time_side_by_side(pair, profiles, h, k, flip, train_batch, timing_runs, device)
    base, prun = profiles
    keys = (
        "params_m",
        "train_gmacs",
        "train_gmacs_linear",
        "infer_gmacs",
        "infer_gmacs_linear",
        "fps",
        "train_step_s",
        "infer_peak_mib",
        "train_peak_mib",
    )
    return {
        "baseline": {k_: getattr(base, k_) for k_ in keys},
        "pruned": {k_: getattr(prun, k_) for k_ in keys},
        "infer_macs_reduction": 1 - prun.infer_gmacs / base.infer_gmacs,
        "train_macs_reduction": 1 - prun.train_gmacs / base.train_gmacs,
        "infer_macs_reduction_linear": 1 - prun.infer_gmacs_linear / base.infer_gmacs_linear,
        "train_macs_reduction_linear": 1 - prun.train_gmacs_linear / base.train_gmacs_linear,
        "speedup": (prun.fps / base.fps) if base.fps and prun.fps else None,
        "train_speedup": (base.train_step_s / prun.train_step_s) if prun.train_step_s else None,
        "hypotheses": h,
        "steps": k,
        "flip_test": flip,
        "train_batch": train_batch,
        "timing_runs": timing_runs,
        "device": device,
    }


def _time_side_by_side(
    cfgs: tuple[Config, Config],
    profiles: list[Profile],
    hypotheses: int,
    steps: int,
    flip: str,
    train_batch: int,
    runs: int,
    device: str,
) -> None:
    """Inference speed and the time of one training step of both models, alternating
    (baseline, pruned, baseline, ...) so that both see the same machine state; medians.
    On a GPU also the peak memory of each."""
    calls = []
    for cfg in cfgs:
        model = build_denoiser(cfg.model).to(device)
        calls.append(
            (_inference(model, cfg, hypotheses, steps, flip, device),
             _train_step(model, cfg, train_batch, device))
        )  # fmt: skip
    for infer, step in calls:  # warm-up
        infer(), step()
    infer_t: list[list[tuple[float, float | None]]] = [[], []]
    step_t: list[list[tuple[float, float | None]]] = [[], []]
    for _ in range(runs):
        for i, (infer, step) in enumerate(calls):
            infer_t[i].append(_timed(infer, device))
            step_t[i].append(_timed(step, device))
    for prof, cfg, inf, stp in zip(profiles, cfgs, infer_t, step_t):
        prof.fps = cfg.model.frames / statistics.median(t for t, _ in inf)
        prof.train_step_s = statistics.median(t for t, _ in stp)
        if device.startswith("cuda"):
            prof.infer_peak_mib = max(m for _, m in inf)
            prof.train_peak_mib = max(m for _, m in stp)


def _timed(fn, device: str) -> tuple[float, float | None]:
    """Seconds of one call of ``fn`` and, on a GPU, the most memory it held beyond what was
    allocated before it (MiB)."""
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    tick = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - tick
    if not cuda:
        return seconds, None
    return seconds, (torch.cuda.max_memory_allocated(device) - before) / 2**20


def median_seconds(fn, runs: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        tick = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tick)
    return statistics.median(times)
