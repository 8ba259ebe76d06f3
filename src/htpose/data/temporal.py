"""Time-axis operations: resampling to the model rate and seq2seq windowing.

Windows are ``F`` consecutive frames. At clip ends they are edge-padded (the first or last
frame repeated), the convention of the field's seq2seq lifters.
"""

from __future__ import annotations

import math

import numpy as np

from htpose.errors import HtposeError

MODEL_FPS = 50.0


def resample(seq: np.ndarray, src_fps: float, dst_fps: float = MODEL_FPS) -> np.ndarray:
    """Linearly resample ``(T, ...)`` from ``src_fps`` to ``dst_fps``.

    The output covers the same time span: frame ``i`` is at time ``i / dst_fps``, and there
    are ``floor((T - 1) * dst_fps / src_fps) + 1`` of them.
    """
    if src_fps <= 0 or dst_fps <= 0:
        raise ValueError("frame rates must be positive")
    n = len(seq)
    if n == 0 or src_fps == dst_fps:
        return seq.copy()
    count = int(np.floor((n - 1) * dst_fps / src_fps + 1e-9)) + 1
    pos = np.arange(count) * (src_fps / dst_fps)
    lo = np.minimum(np.floor(pos).astype(np.int64), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo).reshape(-1, *([1] * (seq.ndim - 1)))
    return (seq[lo] * (1 - w) + seq[hi] * w).astype(seq.dtype)


def window_indices(length: int, start: int, size: int) -> np.ndarray:
    """Frame indices of the window ``[start, start + size)``, clamped to the clip (edge pad)."""
    return np.clip(np.arange(start, start + size), 0, length - 1)


MAX_OVERLAP = 0.9  # beyond it nearly every window repeats its neighbour: cost, no gain


def check_overlap(overlap: float) -> None:
    """A caller's window overlap (evaluate, lift): a one-line error outside [0, 0.9]."""
    if not 0.0 <= overlap <= MAX_OVERLAP:
        raise HtposeError(f"overlap must be in [0, {MAX_OVERLAP:g}], got {overlap}")


MAX_MEDIAN_2D = 31  # model frames (0.6 s at 50 Hz): longer would flatten real motion


def check_median_window(window: int) -> None:
    """A caller's 2D median window (evaluate, lift): a one-line error unless 0, 1 or an odd
    number up to :data:`MAX_MEDIAN_2D`."""
    if isinstance(window, bool) or not isinstance(window, int | np.integer):
        raise HtposeError(f"median_2d must be a whole number, got {window!r}")
    if not 0 <= window <= MAX_MEDIAN_2D or (window > 1 and window % 2 == 0):
        raise HtposeError(
            f"median_2d must be 0 (off) or an odd number of frames up to {MAX_MEDIAN_2D}, "
            f"got {window}"
        )


def median_filter_frames(seq: np.ndarray, window: int) -> np.ndarray:
    """Running median of ``(T, ...)`` over ``window`` frames (odd; 0 or 1: unchanged), each
    value on its own, the ends edge-padded.

    Why: a 2D detector's frame-to-frame jitter and one-frame outliers pass straight through
    the lifter into the 3D (``benchmarks/RESULTS.md``, section 4: noisy 2D), while a short
    median removes them and leaves monotonic motion exactly as it is (only extremes shorter
    than about half the window are clipped), so clean 2D lifts the same. The edge padding
    keeps that exactness at a clip's ends, at the price that an outlier in its very first or
    last frame stays.
    """
    check_median_window(window)
    if window <= 1 or len(seq) < 2:
        return seq.copy()
    pad = window // 2
    padded = np.concatenate([np.repeat(seq[:1], pad, 0), seq, np.repeat(seq[-1:], pad, 0)])
    runs = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)
    return np.median(runs, axis=-1).astype(seq.dtype)


def cover_starts(length: int, size: int, overlap: float = 0.0) -> list[int]:
    """Starts of the windows that cover a clip of ``length`` frames.

    ``overlap`` 0: consecutive windows, each frame in exactly one; the last window may run
    past the clip end (edge-padded; its padded frames are dropped after prediction).
    ``overlap`` in (0, 1): windows every ``floor(size * (1 - overlap))`` frames, kept inside
    the clip where it is long enough (the last one aligned to the clip end, as in training
    no window is padded then), blended by :func:`blend_windows`.
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if overlap == 0.0 or length <= size:
        return list(range(0, length, size))
    stride = max(1, int(size * (1 - overlap)))
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def split_windows(seq: np.ndarray, size: int, overlap: float = 0.0) -> tuple[np.ndarray, list[int]]:
    """Cut ``(T, ...)`` into ``(N, size, ...)`` covering windows; returns them and their
    starts (see :func:`cover_starts`)."""
    starts = cover_starts(len(seq), size, overlap)
    return np.stack([seq[window_indices(len(seq), s, size)] for s in starts]), starts


def blend_weights(size: int) -> np.ndarray:
    """``(size,)`` weights of a window's frames when windows overlap: highest at the centre,
    where a frame has context on both sides, and small but positive at the ends."""
    pos = (np.arange(size) + 0.5) / size
    return np.clip(1.0 - np.abs(2 * pos - 1), 0.02, None)


def blend_windows(windows: np.ndarray, starts: list[int], length: int) -> np.ndarray:
    """Inverse of :func:`split_windows`: ``(N, size, ...)`` back to ``(length, ...)``.

    Without overlap each frame comes from its one window; where windows overlap a frame is
    the weighted mean (:func:`blend_weights`) of its predictions.
    """
    size = windows.shape[1]
    if len(starts) * size >= length and all(b - a == size for a, b in zip(starts, starts[1:])):
        return windows.reshape(-1, *windows.shape[2:])[:length]
    w = blend_weights(size).reshape(size, *([1] * (windows.ndim - 2)))
    total = np.zeros((length, *windows.shape[2:]), np.float64)
    weight = np.zeros((length,) + (1,) * (windows.ndim - 2), np.float64)
    for win, s in zip(windows, starts):
        n = min(size, length - s)
        total[s : s + n] += win[:n] * w[:n]
        weight[s : s + n] += w[:n]
    return (total / weight).astype(windows.dtype)


def sample_positions(absolute: np.ndarray, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Fractional positions ``absolute`` on a recording's frame axis, as (frame before, weight
    of the one after) among the ``count`` frames that begin at absolute frame ``first``
    (held at both ends)."""
    base = np.floor(absolute + 1e-9)
    w = np.clip(absolute - base, 0.0, 1.0)
    lo = base.astype(np.int64) - first
    w = np.where((lo < 0) | (lo >= count - 1), 0.0, w)
    return np.clip(lo, 0, count - 1), w


def stream_positions(
    length: int, fps: float, start_frame: int = 0, rate: float = MODEL_FPS
) -> tuple[int, np.ndarray, np.ndarray]:
    """The model-rate frames spanned by ``length`` input frames at ``fps`` that begin at
    input frame ``start_frame`` of a longer recording, on that recording's clock.

    Returns ``(first, lo, w)``: the absolute index of the first model frame and, per model
    frame, its place among the input frames (:func:`sample_positions`). Positions come from
    absolute indices only, so a piece of a recording resamples bit-identically to the same
    span of the whole.
    """
    k0 = math.ceil(start_frame * rate / fps - 1e-9)
    k1 = max(k0, math.floor((start_frame + length - 1) * rate / fps + 1e-9))
    lo, w = sample_positions(np.arange(k0, k1 + 1) * (fps / rate), start_frame, length)
    return k0, lo, w


def interpolate(seq: np.ndarray, lo: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``seq`` ``(T, ...)`` at fractional positions ``lo + w`` (linear, held at the end)."""
    hi = np.minimum(lo + 1, len(seq) - 1)
    weight = w.reshape(-1, *([1] * (seq.ndim - 1)))
    return (seq[lo] * (1 - weight) + seq[hi] * weight).astype(seq.dtype)


def grid_starts(first: int, last: int, size: int, overlap: float = 0.0) -> list[int]:
    """Window starts on an absolute grid (multiples of the stride from frame 0 of the
    recording) for the frames ``first..last``: the same windows whatever piece is lifted."""
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    stride = size if overlap == 0.0 else max(1, int(size * (1 - overlap)))
    m_lo = max(0, (first - size + 1) // stride)
    return [m * stride for m in range(m_lo, last // stride + 1) if m * stride + size > first]


def blend_grid(windows: np.ndarray, starts: list[int], first: int, last: int) -> np.ndarray:
    """Windows ``(N, size, ...)`` at absolute ``starts`` blended onto frames ``first..last``
    (weights of :func:`blend_weights`; frames outside the span are dropped)."""
    size = windows.shape[1]
    n = last - first + 1
    w = blend_weights(size).reshape(size, *([1] * (windows.ndim - 2)))
    total = np.zeros((n, *windows.shape[2:]), np.float64)
    weight = np.zeros((n,) + (1,) * (windows.ndim - 2), np.float64)
    for win, s in zip(windows, starts):
        a, b = max(s, first), min(s + size, last + 1)
        total[a - first : b - first] += win[a - s : b - s] * w[a - s : b - s]
        weight[a - first : b - first] += w[a - s : b - s]
    return (total / weight).astype(windows.dtype)
