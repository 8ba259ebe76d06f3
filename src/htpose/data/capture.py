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
from htpose.data.virtual_cameras import TEST_KINDS, aimed_view, test_camera_rng
from htpose.data.windows import fill_window
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


def novel_capture(
    collection: ClipCollection,
    cameras_per_clip: int,
    seed: int,
    fps: float = MODEL_FPS,
    distortion: str = "brown_conrady",
    segment_frames: int = 250,
    min_visible: float = 0.9,
) -> list[Sequence]:
    """The novel-camera test protocol: every clip through ``cameras_per_clip`` random cameras.

    Camera ``i`` of a clip is of kind ``TEST_KINDS[i % 4]`` (phone, low webcam, high corner,
    telephoto), drawn from :func:`~htpose.data.virtual_cameras.test_camera_rng` (a seed
    stream training never uses). Users film a person where they point the camera, so a clip
    is cut into segments of at most ``segment_frames`` model frames (5 s), each with its own
    camera aimed at it; a draw keeping under ``min_visible`` of the joints in the image is
    redrawn (the best of 20 is kept). Joints outside the image are filled in as ``htpose
    lift`` fills them. A sequence's ``action`` is the camera kind, so tables are per kind.
    """
    kinds = list(TEST_KINDS)
    out = []
    for name, clip in collection.clips.items():
        moved = resample(clip, collection.fps, fps).astype(np.float64)
        rng = test_camera_rng(seed, name)
        for i in range(cameras_per_clip):
            kind = kinds[i % len(kinds)]
            for s0 in range(0, len(moved), segment_frames):
                part = moved[s0 : s0 + segment_frames]
                if len(part) < 2:
                    continue
                best = aimed_view(
                    rng, part, TEST_KINDS[kind], distortion, min_visible, tries=20,
                    keep_best=True, name=f"{kind}#{i}",
                )  # fmt: skip
                if best is None:
                    continue
                points, pixels, cam, seen = best
                if not seen.all():
                    pixels = fill_window(pixels, seen)
                out.append(
                    Sequence(
                        name=f"{name}[{s0}]@{cam.name}",
                        action=kind,
                        keypoints_2d=pixels.astype(np.float32),
                        camera=cam,
                        joints_3d=(points - points[:, :1]).astype(np.float32),
                        root=points[:, 0].astype(np.float32),
                    )
                )
    return out
