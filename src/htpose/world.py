"""Gravity-up world coordinates for a lift, from the body itself.

A lift is in camera axes (x right, y down, z forward), root-relative, with a root trajectory
for an assumed focal length. Animation and biomechanics want gravity up. The camera's pitch
and roll are estimated from the body's vertical over time: the mean, over frames, of the
direction from the mid-ankles to the thorax (people mostly stand, walk, run or dance upright,
and over a clip the body's lean averages out). This is the choice here because it needs
nothing but the lifted joints; it fails for clips spent mostly lying or upside down (then
pass your own ``up`` vector). Yaw is unknowable from one view and kept from the camera (the
world x axis is the camera's x axis laid flat).

World frame: z up, x the camera's horizontal right, y = z x x (away from the camera, laid
flat); the first frame's pelvis is at the horizontal origin and the lowest ankle over the
clip is at height 0 (the floor).
"""

from __future__ import annotations

import numpy as np

from htpose.errors import HtposeError
from htpose.skeleton import JOINT_NAMES

_J = {name: i for i, name in enumerate(JOINT_NAMES)}


def body_up(joints: np.ndarray) -> np.ndarray:
    """Mean direction ``(3,)`` from the mid-ankles to the thorax of ``(T, 17, 3)`` joints."""
    ankles = (joints[:, _J["l_ankle"]] + joints[:, _J["r_ankle"]]) / 2
    v = joints[:, _J["thorax"]] - ankles
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    ok = norms[:, 0] > 1e-6
    if not ok.any():
        raise HtposeError("the body has no vertical extent; cannot find which way is up")
    up = (v[ok] / norms[ok]).mean(axis=0)
    if np.linalg.norm(up) < 1e-3:
        raise HtposeError("the body's vertical averages out over the clip; pass up=...")
    return up / np.linalg.norm(up)


def camera_to_world_rotation(up: np.ndarray) -> np.ndarray:
    """``(3, 3)`` rotation taking camera-frame vectors to the world frame (rows: world axes
    in camera coordinates: x = camera right laid flat, y = away, z = up)."""
    z = up / np.linalg.norm(up)
    x = np.array([1.0, 0.0, 0.0]) - z * z[0]
    if np.linalg.norm(x) < 1e-6:  # camera looking straight down the body's axis
        x = np.array([0.0, 0.0, 1.0]) - z * z[2]
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


def to_world(
    joints: np.ndarray, root: np.ndarray, up: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Root-relative camera-frame joints ``(T, 17, 3)`` and root ``(T, 3)`` -> absolute
    world joints ``(T, 17, 3)`` (z up, metres) and the rotation used ``(3, 3)``."""
    rot = camera_to_world_rotation(body_up(joints) if up is None else np.asarray(up, float))
    absolute = (joints + root[:, None]) @ rot.T
    absolute[..., :2] -= absolute[0, _J["pelvis"], :2]
    ankles = absolute[:, [_J["l_ankle"], _J["r_ankle"]], 2]
    absolute[..., 2] -= np.nanmin(ankles)
    return absolute, rot
