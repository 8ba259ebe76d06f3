"""Training batches of random seq2seq windows, with detector noise and flip augmentation."""

from __future__ import annotations

from collections.abc import Sequence as Seq

import numpy as np
import torch

from htpose.data.camera import normalize_screen
from htpose.data.sequences import DetectorNoise, Sequence, flip_2d, flip_3d
from htpose.data.temporal import window_indices


class WindowSampler:
    """Draws batches of ``F``-frame windows from labelled sequences.

    Sequences are drawn in proportion to their length; a window shorter clip is edge-padded.
    Everything random comes from the generator passed to :meth:`batch`, so a batch is a pure
    function of that generator's seed (training resumes exactly by re-seeding per step).
    """

    def __init__(
        self,
        sequences: Seq[Sequence],
        frames: int,
        noise: DetectorNoise | None = None,
        noise_prob: float = 0.0,
        flip_prob: float = 0.0,
    ) -> None:
        labelled = [s for s in sequences if s.joints_3d is not None]
        if not labelled:
            raise ValueError("no sequences with 3D ground truth to train on")
        self.sequences = labelled
        self.frames = frames
        self.noise = noise
        self.noise_prob = noise_prob
        self.flip_prob = flip_prob
        lengths = np.array([len(s) for s in labelled], dtype=np.float64)
        self.weights = lengths / lengths.sum()

    def batch(self, rng: np.random.Generator, size: int) -> dict[str, torch.Tensor]:
        """``keypoints_2d`` ``(B, F, J, 2)`` normalised and ``joints_3d`` ``(B, F, J, 3)``."""
        picks = rng.choice(len(self.sequences), size=size, p=self.weights)
        kp2d, kp3d = [], []
        for i in picks:
            seq = self.sequences[i]
            start = int(rng.integers(0, max(len(seq) - self.frames, 0) + 1))
            idx = window_indices(len(seq), start, self.frames)
            pixels = seq.keypoints_2d[idx]
            if self.noise is not None and rng.random() < self.noise_prob:
                pixels = self.noise.apply(pixels, rng, scale=seq.camera.width / 1000.0)
            cam = seq.camera
            kp2d.append(normalize_screen(torch.from_numpy(pixels), cam.width, cam.height))
            kp3d.append(torch.from_numpy(seq.joints_3d[idx]))
        x, y = torch.stack(kp2d).float(), torch.stack(kp3d).float()
        flip = torch.from_numpy(rng.random(size) < self.flip_prob)
        if flip.any():
            x[flip], y[flip] = flip_2d(x[flip]), flip_3d(y[flip])
        return {"keypoints_2d": x, "joints_3d": y}
