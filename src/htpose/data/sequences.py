"""Camera-view sequences: the unit every trainer, evaluator and lifter works on.

A :class:`Sequence` is one motion seen by one camera at the model rate: 2D keypoints in
pixels and, when known, the camera-frame 3D joints (root-relative) and root trajectory.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch

from htpose.data.camera import Camera
from htpose.skeleton import FLIP_PERM


@dataclass
class Sequence:
    """One clip through one camera.

    Shapes: ``keypoints_2d`` ``(T, J, 2)`` pixels; ``joints_3d`` ``(T, J, 3)`` metres,
    camera frame, pelvis at the origin; ``root`` ``(T, 3)`` camera-frame pelvis position;
    ``valid`` ``(T,)`` frames that count in metrics (3DHP marks some invalid).
    """

    name: str
    action: str
    keypoints_2d: np.ndarray
    camera: Camera
    joints_3d: np.ndarray | None = None
    root: np.ndarray | None = None
    valid: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.keypoints_2d)


def flip_2d(xy: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Mirror normalised 2D ``(..., J, 2)`` about the vertical axis and swap left/right."""
    perm = list(FLIP_PERM)
    out = xy[..., perm, :].clone() if torch.is_tensor(xy) else xy[..., perm, :].copy()
    out[..., 0] = -out[..., 0]
    return out


def flip_3d(xyz: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Mirror camera-frame 3D ``(..., J, 3)`` in x and swap left/right (pairs with flip_2d)."""
    return flip_2d(xyz)


# RMS distance of the joints from their centroid, in pixels, of a Human3.6M subject seen by
# a Human3.6M camera (1000 px images): the person size detector-noise pixels refer to.
REFERENCE_SPREAD_PX = 95.0


def person_scale(pixels: np.ndarray) -> float:
    """The size of the person in ``(T, J, 2)`` pixels relative to :data:`REFERENCE_SPREAD_PX`
    (median over frames of the RMS joint distance from the frame's centroid)."""
    centred = pixels - pixels.mean(axis=-2, keepdims=True)
    spread = np.sqrt((centred**2).sum(-1).mean(-1))
    return float(np.median(spread)) / REFERENCE_SPREAD_PX


@dataclass(frozen=True)
class DetectorNoise:
    """A model of 2D detector error, in pixels for a person of the Human3.6M subjects' size in
    Human3.6M's images (scaled by :func:`person_scale` for other sizes).

    Per joint: jitter (``jitter_px``), a slowly drifting offset (``drift_px``, a random walk
    smoothed over ``drift_frames``), and rare gross outliers (``outlier_prob`` per joint and
    frame, ``outlier_px`` in size). The defaults give a mean 2D error of about 5 px, similar
    to cascaded-pyramid detections on Human3.6M.

    Time structure (frames at 50 Hz): ``jitter_frames`` > 1 makes the jitter a moving
    average of white noise over that many frames (autocorrelation ``(L - k) / L`` at lag
    ``k``, same size); ``outlier_frames`` > 1 holds each outlier for that many frames, its
    starts ``outlier_frames`` times rarer so the share of outlying frames stays about
    ``outlier_prob``. A real detector's error is far from white (MediaPipe on the Pose2Sim
    videos: lag-one autocorrelation 0.70, and 69 % of outlying frames follow another;
    ``benchmarks/noise_time_structure.py``), and white noise flatters temporal filters.
    With both at 1 (the default) the draws are exactly those of the white model.
    """

    jitter_px: float = 2.5
    drift_px: float = 3.5
    drift_frames: int = 25
    outlier_prob: float = 0.005
    outlier_px: float = 30.0
    jitter_frames: int = 1
    outlier_frames: int = 1

    def apply(
        self, keypoints: np.ndarray, rng: np.random.Generator, scale: float = 1.0
    ) -> np.ndarray:
        """Perturb ``(T, J, 2)`` pixels; ``scale`` multiplies every size (see
        :func:`person_scale`)."""
        t, j, _ = keypoints.shape
        if self.jitter_frames <= 1:
            out = keypoints + rng.normal(0.0, self.jitter_px * scale, keypoints.shape)
        else:
            out = keypoints + _moving_sum(rng, t, j, self.jitter_frames) * self.jitter_px * scale
        if self.drift_px > 0:
            steps = max(1, self.drift_frames)
            walk = rng.normal(0.0, 1.0, (t + steps, j, 2))
            kernel = np.ones(steps) / np.sqrt(steps)
            drift = np.apply_along_axis(lambda v: np.convolve(v, kernel, "valid")[:t], 0, walk)
            out = out + drift * self.drift_px * scale
        if self.outlier_prob > 0:
            hold = max(1, self.outlier_frames)
            hit = rng.random((t, j, 1)) < self.outlier_prob / hold
            jump = hit * rng.normal(0.0, self.outlier_px * scale, keypoints.shape)
            if hold > 1:  # each jump lasts `hold` frames (overlapping ones add up)
                c = np.concatenate([np.zeros((hold, j, 2)), np.cumsum(jump, 0)])
                jump = c[hold:] - c[:-hold]
            out = out + jump
        return out.astype(keypoints.dtype)


def _moving_sum(rng: np.random.Generator, t: int, j: int, frames: int) -> np.ndarray:
    """``(t, j, 2)`` unit-variance noise, each value the scaled sum of ``frames`` white ones."""
    white = rng.normal(0.0, 1.0, (t + frames - 1, j, 2))
    c = np.concatenate([np.zeros((1, j, 2)), np.cumsum(white, 0)])
    return (c[frames:] - c[:-frames]) / np.sqrt(frames)


def noise_seed(name: str, seed: int) -> np.random.Generator:
    """A generator fixed by the sequence name, so every model is tested on the same noise."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])
