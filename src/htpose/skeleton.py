"""The Human3.6M 17-joint skeleton, the one layout every htpose model reads and writes."""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "spine",
    "thorax",
    "neck_nose",
    "head",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
)
NUM_JOINTS = len(JOINT_NAMES)
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
LEFT_JOINTS: tuple[int, ...] = (4, 5, 6, 11, 12, 13)
RIGHT_JOINTS: tuple[int, ...] = (1, 2, 3, 14, 15, 16)
ROOT = 0


def flip_permutation() -> list[int]:
    """Index list that swaps every left joint with its right twin (an involution)."""
    perm = list(range(NUM_JOINTS))
    for left, right in zip(LEFT_JOINTS, RIGHT_JOINTS):
        perm[left], perm[right] = right, left
    return perm


FLIP_PERM: tuple[int, ...] = tuple(flip_permutation())

# Bones as (child, parent) pairs, for drawing and bone-length checks.
BONES: tuple[tuple[int, int], ...] = tuple((j, p) for j, p in enumerate(PARENTS) if p >= 0)

MIN_STATURE_M, MAX_STATURE_M = 0.5, 2.6  # a toddler to the tallest people recorded

# Standing height from the skeleton: the bones from ankle to head top (each leg's ankle-knee
# and knee-hip, averaged over both legs, then pelvis-spine-thorax-neck-head) times this.
# Measured on the CMU `train` clips: head top above the lower ankle in each clip's most
# upright 5 % of frames, plus the ankle's height above the floor (3.9 % of stature, Winter's
# anthropometric tables), over the chain: median 1.0165, clips' 10-90 % range 1.002-1.028.
STATURE_PER_CHAIN = 1.0165
_LEG_BONES = ((3, 2), (2, 1), (6, 5), (5, 4))
_TRUNK_BONES = ((0, 7), (7, 8), (8, 9), (9, 10))


def stature(joints_3d: np.ndarray) -> float:
    """Standing height (the unit of ``joints_3d``) of the body in ``(T, 17, 3)``: the median
    over frames of its ankle-to-head-top bone chain times :data:`STATURE_PER_CHAIN`. Bone
    lengths do not depend on posture or view, so any frames will do."""
    joints = np.asarray(joints_3d, dtype=np.float64)

    def length(bones: tuple[tuple[int, int], ...]) -> np.ndarray:
        return sum(np.linalg.norm(joints[:, a] - joints[:, b], axis=-1) for a, b in bones)

    chain = length(_LEG_BONES) / 2 + length(_TRUNK_BONES)
    return float(np.median(chain) * STATURE_PER_CHAIN)
