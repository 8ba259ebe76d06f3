"""Pose augmentation of world-space motion windows: poses and bodies the recordings lack.

All functions take and return ``(F, J, 3)`` world windows (metres, Z up) in Human3.6M-17
order and draw from the generator they are given.

- :func:`scale_bones`: every bone scaled by one body factor (children to tall adults) times a
  small per-bone factor shared by the left and right twin, rebuilt by forward kinematics from
  the pelvis, so the motion stays a motion of one rigid-boned body.
- :func:`tilt`: the whole window rotated about a horizontal axis through its mean pelvis
  (bending over, lying down, upside down), then set back on the floor. Mocap of upright
  actions has no floor work; rotated clips give the lifter views of bodies in those
  orientations. The motion is then physically odd (gravity points elsewhere), which a lifter
  reading 2D does not need to know.
"""

from __future__ import annotations

import math

import numpy as np

from htpose.skeleton import LEFT_JOINTS, PARENTS, RIGHT_JOINTS


def _topological_order() -> tuple[int, ...]:
    """Joints in an order where every parent comes before its children."""
    order: list[int] = []
    pending = list(range(len(PARENTS)))
    while pending:
        for j in list(pending):
            if PARENTS[j] < 0 or PARENTS[j] in order:
                order.append(j)
                pending.remove(j)
    return tuple(order)


TOPOLOGICAL_ORDER = _topological_order()
# Each joint's bone shares its random factor with its mirror twin's bone.
_TWIN = {r: l for l, r in zip(LEFT_JOINTS, RIGHT_JOINTS)}


def scale_bones(
    window: np.ndarray,
    rng: np.random.Generator,
    body: tuple[float, float] = (0.6, 1.15),
    per_bone: float = 0.08,
) -> np.ndarray:
    """Scale bone lengths: one factor in ``body`` (uniform), times ``1 +- per_bone`` per bone.

    The pelvis trajectory is scaled by the body factor too (a smaller body covers less ground).
    """
    factor = rng.uniform(*body)
    jitter = rng.uniform(1 - per_bone, 1 + per_bone, len(PARENTS))
    for right, left in _TWIN.items():
        jitter[right] = jitter[left]
    out = np.empty_like(window)
    root = window[:, 0]
    root_mean = root.mean(axis=0)
    out[:, 0] = root_mean + (root - root_mean) * factor
    out[:, 0, 2] = root[:, 2] * factor  # heights scale from the floor
    for j in TOPOLOGICAL_ORDER:
        p = PARENTS[j]
        if p < 0:
            continue
        out[:, j] = out[:, p] + (window[:, j] - window[:, p]) * factor * jitter[j]
    return out


def rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    """``(3, 3)`` rotation by ``angle`` radians about the unit ``axis`` (Rodrigues)."""
    x, y, z = axis / np.linalg.norm(axis)
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def tilt(window: np.ndarray, rng: np.random.Generator, max_angle: float = 180.0) -> np.ndarray:
    """Rotate about a random horizontal axis through the mean pelvis by up to ``max_angle``
    degrees (uniform in angle), then shift so the lowest joint touches the floor (z = 0)."""
    heading = rng.uniform(0, 2 * math.pi)
    return tilt_by(window, rng.uniform(-max_angle, max_angle), heading)


def tilt_by(window: np.ndarray, angle: float, heading: float) -> np.ndarray:
    """``(T, J, 3)`` rotated by ``angle`` degrees about the horizontal axis pointing at
    ``heading`` radians, through the mean pelvis; the lowest joint then touches the floor."""
    axis = np.array([math.cos(heading), math.sin(heading), 0.0])
    centre = window[:, 0].mean(axis=0)
    out = (window - centre) @ rotation_about(axis, math.radians(angle)).T + centre
    out[..., 2] -= out[..., 2].min()
    return out
