"""Time-axis operations: resampling to the model rate and seq2seq windowing.

Windows are ``F`` consecutive frames. At clip ends they are edge-padded (the first or last
frame repeated), the convention of the field's seq2seq lifters.
"""

from __future__ import annotations

import numpy as np

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


def cover_starts(length: int, size: int) -> list[int]:
    """Starts of consecutive non-overlapping windows covering every frame exactly once.

    The last window may run past the clip end; its padded frames are dropped after
    prediction, so each real frame is predicted once (unlike D3DP, which re-aligns the last
    window to the sequence end and counts its frames twice).
    """
    return list(range(0, length, size))


def split_windows(seq: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """Cut ``(T, ...)`` into ``(N, size, ...)`` covering windows; returns them and ``T``."""
    starts = cover_starts(len(seq), size)
    return np.stack([seq[window_indices(len(seq), s, size)] for s in starts]), len(seq)


def merge_windows(windows: np.ndarray, length: int) -> np.ndarray:
    """Inverse of :func:`split_windows`: ``(N, size, ...)`` back to ``(length, ...)``.

    Works for any extra leading axes after N being folded into the window axis order
    ``(N, size, ...)`` only.
    """
    return windows.reshape(-1, *windows.shape[2:])[:length]
