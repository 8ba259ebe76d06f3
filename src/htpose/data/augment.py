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
- :func:`mix_parts`: the arms or the legs of one window moved as another window's move,
  relative to each body's own torso, with the first body's bone lengths (new combinations of
  motions the recordings never paired: a dancer's arms on a walker's legs). Mixing limbs
  between recordings is a common pose augmentation in the lifting literature; this form keeps
  bone lengths exact and transfers directions in a body frame, so a turned donor does not
  twist the limbs.
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


# Limb parts :func:`mix_parts` moves: (joint, parent) bones in topological order, and the
# torso frame they are expressed in ((left, right) joints for the sideways axis, and (low,
# high) joints for up).
LIMB_PARTS: dict[str, tuple[tuple[tuple[int, int], ...], tuple[int, int], tuple[int, int]]] = {
    "arms": (((12, 11), (13, 12), (15, 14), (16, 15)), (11, 14), (7, 8)),
    "legs": (((2, 1), (3, 2), (5, 4), (6, 5)), (4, 1), (0, 7)),
}


def torso_frames(window: np.ndarray, sideways: tuple[int, int], up: tuple[int, int]) -> np.ndarray:
    """``(F, 3, 3)`` rotations whose columns are each frame's body axes in world
    coordinates: left (from ``sideways[1]`` to ``sideways[0]``), forward, and up (from
    ``up[0]`` to ``up[1]``, made orthogonal to left)."""
    left = window[:, sideways[0]] - window[:, sideways[1]]
    left /= np.linalg.norm(left, axis=-1, keepdims=True) + 1e-9
    up_raw = window[:, up[1]] - window[:, up[0]]
    upward = up_raw - (up_raw * left).sum(-1, keepdims=True) * left
    upward /= np.linalg.norm(upward, axis=-1, keepdims=True) + 1e-9
    forward = np.cross(upward, left)
    return np.stack([left, forward, upward], axis=-1)


def mix_parts(window: np.ndarray, donor: np.ndarray, part: str) -> np.ndarray:
    """``window`` ``(F, J, 3)`` with the bones of ``part`` (a key of :data:`LIMB_PARTS`)
    pointing, relative to its torso, where ``donor``'s ``(F, J, 3)`` point relative to the
    donor's torso; every bone keeps ``window``'s length, every other joint stays."""
    bones, sideways, up = LIMB_PARTS[part]
    own, theirs = torso_frames(window, sideways, up), torso_frames(donor, sideways, up)
    out = window.copy()
    for joint, parent in bones:
        length = np.linalg.norm(window[:, joint] - window[:, parent], axis=-1, keepdims=True)
        direction = donor[:, joint] - donor[:, parent]
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True) + 1e-9
        local = np.einsum("fij,fi->fj", theirs, direction)  # donor's body axes
        out[:, joint] = out[:, parent] + length * np.einsum("fij,fj->fi", own, local)
    return out
