"""Virtual capture: turn world-space clips into camera-view training and test sequences.

Each clip's mean horizontal root position is moved to the world origin (where the
Human3.6M cameras look), the clip is resampled to 50 Hz, and projected through every
camera given. Default camera sets follow the Human3.6M protocol: training views are the
cameras of S1, S5, S6, S7, S8; test views those of S9 and S11.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence as Seq

import numpy as np
import torch

from htpose.data.camera import Camera, load_h36m_cameras, project, world_to_camera
from htpose.data.clips import ClipCollection
from htpose.data.sequences import Sequence
from htpose.data.temporal import MODEL_FPS, resample
from htpose.errors import DataError

TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")


def cameras_for(path: str, subjects: Iterable[str]) -> list[Camera]:
    """The cameras of ``subjects`` from a Human3.6M camera file."""
    rig = load_h36m_cameras(path)
    missing = [s for s in subjects if s not in rig]
    if missing:
        raise DataError(f"{path}: no cameras for subject {missing[0]}")
    return [cam for s in subjects for cam in rig[s]]


def center_clip(clip: np.ndarray) -> np.ndarray:
    """Shift ``(T, J, 3)`` so the mean horizontal (x, y) pelvis position is at the origin."""
    offset = clip[:, 0, :2].mean(axis=0)
    out = clip.copy()
    out[..., :2] -= offset
    return out


def capture_clip(
    name: str,
    action: str,
    clip: np.ndarray,
    camera: Camera,
    distortion: str = "brown_conrady",
) -> Sequence:
    """Project one world clip ``(T, J, 3)`` (already at the model rate) through ``camera``."""
    world = torch.from_numpy(clip.astype(np.float64))
    cam = world_to_camera(world, camera)
    if (cam[..., 2] <= 0.1).any():
        raise DataError(f"clip {name!r} passes behind camera {camera.name}")
    pixels = project(cam, camera.intrinsics(), distortion)
    root = cam[:, 0]
    return Sequence(
        name=f"{name}@{camera.name}",
        action=action,
        keypoints_2d=pixels.float().numpy(),
        camera=camera,
        joints_3d=(cam - root[:, None]).float().numpy(),
        root=root.float().numpy(),
    )


def virtual_capture(
    collection: ClipCollection,
    cameras: Seq[Camera],
    fps: float = MODEL_FPS,
    distortion: str = "brown_conrady",
) -> list[Sequence]:
    """Every clip of ``collection`` through every camera, resampled to ``fps``."""
    out = []
    for name, clip in collection.clips.items():
        moved = resample(center_clip(clip), collection.fps, fps)
        action = collection.action_of(name)
        out.extend(capture_clip(name, action, moved, cam, distortion) for cam in cameras)
    return out
