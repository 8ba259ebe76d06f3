"""Video decoding through imageio-ffmpeg (its bundled ffmpeg; ``pip install 'htpose[video]'``).

Frames come out upright: ffmpeg applies a phone's rotation flag, and the reported size is the
size after rotation. Decoding streams frame by frame, so memory does not grow with length.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from htpose import budget
from htpose.errors import DataError, HtposeError
from htpose.io import regular_file

# Frames larger than 8K on a side are refused before decoding (one frame alone would be
# hundreds of MB as RGB).
MAX_SIDE = 8192


@dataclass
class VideoInfo:
    """What the container says: ``width`` x ``height`` of the (upright) frames, ``fps``
    (``None`` when unknown), ``duration`` in seconds (0 when unknown), ``codec``."""

    path: Path
    width: int
    height: int
    fps: float | None
    duration: float
    codec: str

    @property
    def expected_frames(self) -> int | None:
        if self.fps and self.duration > 0:
            return int(round(self.fps * self.duration))
        return None


def _ffmpeg_module():
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise HtposeError(
            "reading video needs imageio-ffmpeg: pip install 'htpose[video]'"
        ) from exc
    return imageio_ffmpeg


def probe(path: str | Path) -> VideoInfo:
    """Open ``path`` and read its header; a file ffmpeg cannot read is a one-line error."""
    path = regular_file(path, "video")
    ffmpeg = _ffmpeg_module()
    gen = ffmpeg.read_frames(str(path))
    try:
        meta = next(gen)
    except (OSError, RuntimeError, StopIteration, ValueError, KeyError, IndexError) as exc:
        raise DataError(f"{path}: not a video ffmpeg can read") from exc
    finally:
        gen.close()
    try:
        width, height = (int(v) for v in meta["size"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: no video stream") from exc
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise DataError(f"{path}: frame size {width}x{height} is outside 1-{MAX_SIDE} pixels")
    fps = float(meta.get("fps") or 0.0)
    fps = fps if math.isfinite(fps) and 0.1 <= fps <= 1000 else None
    duration = float(meta.get("duration") or 0.0)
    duration = duration if math.isfinite(duration) and duration > 0 else 0.0
    return VideoInfo(path, width, height, fps, duration, str(meta.get("codec", "")))


def frames(info: VideoInfo) -> Iterator[np.ndarray]:
    """Yield the frames of ``info.path`` as ``(H, W, 3)`` uint8 RGB arrays, in order.

    A stream that breaks midway ends the iteration early (the caller compares the count with
    :attr:`VideoInfo.expected_frames`); nothing is raised for a damaged tail.
    """
    ffmpeg = _ffmpeg_module()
    frame_bytes = info.width * info.height * 3
    budget.check(4 * frame_bytes, f"decoding {info.width}x{info.height} frames")
    # -an: ignore audio; errors in the stream are concealed or end it, never abort us.
    gen = ffmpeg.read_frames(str(info.path), input_params=["-err_detect", "ignore_err"],
                             output_params=["-an"])  # fmt: skip
    try:
        next(gen)
        while True:
            try:
                raw = next(gen)
            except StopIteration:
                return
            except (RuntimeError, OSError):  # truncated last frame or a dying ffmpeg
                return
            if len(raw) != frame_bytes:
                return
            yield np.frombuffer(raw, np.uint8).reshape(info.height, info.width, 3)
    finally:
        gen.close()
