"""The memory budget: every size that input controls is checked before it is allocated.

Frame counts after resampling, windows x hypotheses, model sizes from a config or a
checkpoint header, array sizes declared in files and bytes read from a stream are each
estimated first and compared with one limit: by default half of the machine's memory,
``--max-memory`` (or ``HTPOSE_MAX_MEMORY``) to change it. Going over is a one-line error
naming the value that is too large, never an attempt.
"""

from __future__ import annotations

import os
import re

from htpose.errors import HtposeError

DEFAULT_FRACTION = 0.5
FLOAT_BYTES = 4
# Working set of one transformer forward pass per token and channel: the residual stream,
# LayerNorm, QKV, attention output and the MLP's hidden layer, kept for backward in training.
_INFER_WORK = 12
_TRAIN_WORK = 24

_limit: int | None = None


class MemoryBudgetError(HtposeError):
    """A size derived from the input would need more memory than the budget allows."""


def machine_memory() -> int:
    """Physical memory in bytes (8 GiB where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def parse_size(text: str) -> int:
    """``"4G"``, ``"512M"``, ``"2.5GiB"`` or a byte count -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*", str(text).lower())
    if not m:
        raise HtposeError(f"memory size {text!r} is not like 4G, 512M or 1000000")
    value = float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " ")
    if not 1 << 20 <= value <= 1 << 50:
        raise HtposeError(f"memory size {text!r} must be between 1M and 1P")
    return int(value)


def set_limit(nbytes: int | None) -> None:
    """Set the budget in bytes (None: the default)."""
    global _limit
    _limit = nbytes


def limit() -> int:
    if _limit is not None:
        return _limit
    env = os.environ.get("HTPOSE_MAX_MEMORY")
    if env:
        return parse_size(env)
    return int(machine_memory() * DEFAULT_FRACTION)


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def check(nbytes: float, what: str) -> None:
    """Raise :class:`MemoryBudgetError` when ``what`` needs more than the budget."""
    if not nbytes <= limit():  # also catches NaN
        raise MemoryBudgetError(
            f"{what} would need about {format_bytes(nbytes)} of memory, over the budget of "
            f"{format_bytes(limit())} (raise it with --max-memory if this machine has it)"
        )


def model_bytes(frames: int, joints: int, width: int, depth: int, mlp_ratio: float) -> float:
    """Parameters of a denoiser of this size, in bytes (x3 with AdamW's two moments)."""
    per_pair = 2 * (4 + 2 * mlp_ratio) * width * width
    return FLOAT_BYTES * (depth * per_pair + (frames + joints) * width + 8 * width * width)


def pose_context_bytes(joints: int, width: int, hidden: int, frames: int) -> float:
    """Parameters of the whole-pose map (J x 2 -> J x C) and its temporal branch (a
    ``frames``-wide convolution to ``hidden`` channels, then a linear map), in bytes."""
    return FLOAT_BYTES * (2 * joints * joints * width + hidden * joints * (2 * frames + width))


def forward_bytes(
    sequences: float, frames: int, joints: int, width: int, heads: int, training: bool = False
) -> float:
    """Peak working memory of one denoiser pass over ``sequences`` windows."""
    tokens = sequences * frames * joints
    work = _TRAIN_WORK if training else _INFER_WORK
    attention = sequences * joints * heads * frames * frames * (3 if training else 1)
    return FLOAT_BYTES * (tokens * width * work + attention)


def fit_batch(batch: int, passes: int, frames: int, joints: int, width: int, heads: int) -> int:
    """The largest batch of windows up to ``batch`` whose sampling (``passes`` denoiser
    passes per window at once: hypotheses x 2 with test-time flip) fits the budget; an
    error if not even one window fits."""

    def need(b: int) -> float:
        return forward_bytes(b * passes, frames, joints, width, heads)

    while batch > 1 and need(batch) > limit():
        batch //= 2
    check(need(batch), f"one window of {frames} frames x {passes} denoiser passes")
    return batch
