"""The Human3.6M 17-joint skeleton, the one layout every htpose model reads and writes."""

from __future__ import annotations

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
