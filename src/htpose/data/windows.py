"""Training batches of random seq2seq windows.

Two samplers give the same batch format (``keypoints_2d`` ``(B, F, J, 2)`` normalised per
``data.normalization``, ``joints_3d`` ``(B, F, J, 3)`` camera frame, pelvis-relative):

- :class:`WindowSampler` cuts windows from sequences already seen by a camera (validation,
  and data sets that come with their own 2D).
- :class:`CaptureSampler` makes every window from world motion on the fly: pose
  augmentation, a camera (random virtual or Human3.6M), projection, joints out of frame or
  occluded marked missing and filled in as ``htpose lift`` does, detector noise, mirroring.

Everything random comes from the generator passed to ``batch``, so a batch is a pure
function of that generator's seed (training resumes exactly by re-seeding per step).
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass

import numpy as np
import torch

from htpose.data.augment import mix_parts, scale_bones, tilt
from htpose.data.camera import Camera, normalize_keypoints
from htpose.data.keypoints import fill_missing
from htpose.data.sequences import DetectorNoise, Sequence, flip_2d, flip_3d, person_scale
from htpose.data.temporal import window_indices
from htpose.data.virtual_cameras import CameraRanges, aimed_view, project_np, world_to_camera_np

# Joint groups an occlusion hides together (a forearm, a hand, a shin, a foot, the head).
OCCLUSION_GROUPS = ((12, 13), (13,), (15, 16), (16,), (2, 3), (3,), (5, 6), (6,), (9, 10))


def _flip_batch(
    x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, prob: float
) -> tuple[torch.Tensor, torch.Tensor]:
    flip = torch.from_numpy(rng.random(len(x)) < prob)
    if flip.any():
        x[flip], y[flip] = flip_2d(x[flip]), flip_3d(y[flip])
    return x, y


class WindowSampler:
    """Draws batches of ``F``-frame windows from labelled camera-view sequences.

    Sequences are drawn in proportion to their length; a window longer than its clip is
    edge-padded.
    """

    def __init__(
        self,
        sequences: Seq[Sequence],
        frames: int,
        noise: DetectorNoise | None = None,
        noise_prob: float = 0.0,
        flip_prob: float = 0.0,
        normalization: str = "screen",
    ) -> None:
        labelled = [s for s in sequences if s.joints_3d is not None]
        if not labelled:
            raise ValueError("no sequences with 3D ground truth to train on")
        self.sequences = labelled
        self.frames = frames
        self.noise = noise
        self.noise_prob = noise_prob
        self.flip_prob = flip_prob
        self.normalization = normalization
        lengths = np.array([len(s) for s in labelled], dtype=np.float64)
        self.weights = lengths / lengths.sum()

    def batch(self, rng: np.random.Generator, size: int) -> dict[str, torch.Tensor]:
        picks = rng.choice(len(self.sequences), size=size, p=self.weights)
        kp2d, kp3d = [], []
        for i in picks:
            seq = self.sequences[i]
            start = int(rng.integers(0, max(len(seq) - self.frames, 0) + 1))
            idx = window_indices(len(seq), start, self.frames)
            pixels = seq.keypoints_2d[idx]
            if self.noise is not None and rng.random() < self.noise_prob:
                pixels = self.noise.apply(pixels, rng, scale=person_scale(pixels))
            cam = seq.camera
            kp2d.append(
                normalize_keypoints(torch.from_numpy(pixels), cam.width, cam.height,
                                    self.normalization)
            )  # fmt: skip
            kp3d.append(torch.from_numpy(seq.joints_3d[idx]))
        x, y = torch.stack(kp2d).float(), torch.stack(kp3d).float()
        x, y = _flip_batch(x, y, rng, self.flip_prob)
        return {"keypoints_2d": x, "joints_3d": y}


@dataclass(frozen=True)
class Augmentation:
    """What :class:`CaptureSampler` does to each window (from ``data`` of the config)."""

    camera_prob: float = 0.0
    ranges: CameraRanges = CameraRanges()
    min_visible: float = 0.7
    tilt_prob: float = 0.0
    tilt_max: float = 180.0
    tilt_from: float = 0.0
    scale_prob: float = 0.0
    body_scale: tuple[float, float] = (0.6, 1.15)
    bone_jitter: float = 0.08
    mix_prob: float = 0.0
    occlusion_prob: float = 0.0
    noise_prob: float = 0.0
    flip_prob: float = 0.0


class CaptureSampler:
    """Windows made from world motion ``(T, J, 3)`` (50 Hz, metres, Z up) at draw time.

    ``fixed_cameras`` (e.g. the Human3.6M training views) see the window with its mean
    horizontal pelvis position moved to the world origin, where those cameras look; a share
    ``aug.camera_prob`` of windows is seen through a random camera instead
    (:func:`~htpose.data.virtual_cameras.draw_camera`), aimed at the window where it is.
    """

    def __init__(
        self,
        clips: Seq[np.ndarray],
        frames: int,
        fixed_cameras: Seq[Camera],
        aug: Augmentation,
        noise: DetectorNoise | None = None,
        distortion: str = "brown_conrady",
        normalization: str = "screen",
    ) -> None:
        if not clips:
            raise ValueError("no clips to train on")
        self.clips = list(clips)
        self.frames = frames
        self.fixed = list(fixed_cameras)
        self.aug = aug
        self.noise = noise
        self.distortion = distortion
        self.normalization = normalization
        lengths = np.array([len(c) for c in self.clips], dtype=np.float64)
        self.weights = lengths / lengths.sum()

    def world_window(self, rng: np.random.Generator, progress: float = 1.0) -> np.ndarray:
        """A random window ``(F, J, 3)`` of a random clip, pose-augmented.

        ``progress`` is the share of training done; tilts start at ``aug.tilt_from``. The
        tilt draw is made either way, so a curriculum changes no other window. Limb mixing
        (``aug.mix_prob``) draws a second window, before the bones are scaled."""
        window = self._raw_window(rng)
        a = self.aug
        # Drawn only when on, so that runs without mixing keep their random stream.
        if a.mix_prob > 0 and rng.random() < a.mix_prob:
            part = ("arms", "legs")[int(rng.integers(2))]
            window = mix_parts(window, self._raw_window(rng), part)
            window[..., 2] -= min(window[..., 2].min(), 0.0)  # bent legs may reach below the floor
        if rng.random() < a.scale_prob:
            window = scale_bones(window, rng, a.body_scale, a.bone_jitter)
        if rng.random() < a.tilt_prob and progress >= a.tilt_from:
            window = tilt(window, rng, a.tilt_max)
        return window

    def _raw_window(self, rng: np.random.Generator) -> np.ndarray:
        """``(F, J, 3)`` of a random clip (chosen by length) at a random start."""
        clip = self.clips[int(rng.choice(len(self.clips), p=self.weights))]
        start = int(rng.integers(0, max(len(clip) - self.frames, 0) + 1))
        return clip[window_indices(len(clip), start, self.frames)].astype(np.float64)

    def view(
        self, window: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, Camera, np.ndarray]:
        """Camera-frame joints, pixels, the camera and the ``(F, J)`` visibility mask."""
        if self.aug.camera_prob > 0 and rng.random() < self.aug.camera_prob:
            found = aimed_view(
                rng, window, self.aug.ranges, self.distortion, self.aug.min_visible, tries=10
            )
            if found is not None:
                return found
        centred = window.copy()
        centred[..., :2] -= window[:, 0, :2].mean(axis=0)
        cam = self.fixed[int(rng.integers(len(self.fixed)))]
        points = world_to_camera_np(centred, cam)
        pixels = project_np(points, cam, self.distortion)
        return points, pixels, cam, np.ones(pixels.shape[:2], bool)

    def occlude(self, seen: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Hide one joint group for a random span shorter than the window."""
        f = len(seen)
        group = OCCLUSION_GROUPS[int(rng.integers(len(OCCLUSION_GROUPS)))]
        length = int(rng.integers(1, max(f // 2, 2)))
        start = int(rng.integers(0, f - length + 1))
        out = seen.copy()
        out[start : start + length, list(group)] = False
        return out if out.any(axis=0).all() else seen

    def batch(
        self, rng: np.random.Generator, size: int, progress: float = 1.0
    ) -> dict[str, torch.Tensor]:
        """``size`` windows: ``keypoints_2d`` ``(B, F, J, 2)``, ``joints_3d`` ``(B, F, J, 3)``
        (metres, root-relative); ``progress`` as in :meth:`world_window`."""
        kp2d, kp3d = [], []
        for _ in range(size):
            window = self.world_window(rng, progress)
            points, pixels, cam, seen = self.view(window, rng)
            if self.noise is not None and rng.random() < self.aug.noise_prob:
                pixels = self.noise.apply(pixels, rng, scale=person_scale(pixels))
            if rng.random() < self.aug.occlusion_prob:
                seen = self.occlude(seen, rng)
            if not seen.all():
                pixels = fill_window(pixels, seen)
            kp2d.append(
                normalize_keypoints(torch.from_numpy(pixels), cam.width, cam.height,
                                    self.normalization)
            )  # fmt: skip
            kp3d.append(torch.from_numpy(points - points[:, :1]))
        x, y = torch.stack(kp2d).float(), torch.stack(kp3d).float()
        x, y = _flip_batch(x, y, rng, self.aug.flip_prob)
        return {"keypoints_2d": x, "joints_3d": y}


def fill_window(pixels: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Missing joints ``~seen`` ``(F, J)`` filled as ``htpose lift`` fills them
    (:func:`htpose.data.keypoints.fill_missing`: linear in time, held at the ends)."""
    filled, _ = fill_missing(pixels, seen.astype(np.float64), threshold=0.5)
    return filled
