"""BVH motion files (Biovision Hierarchy) from Human3.6M-17 joint positions, for Blender & co.

Skeleton: the Human3.6M-17 tree rooted at the pelvis; ankles, wrists and the head end in
``End Site`` s. OFFSETs are each bone's median length over the clip laid along a rest pose
(legs down, spine and head up, arms out to the sides: a T-pose); the bones leaving the pelvis
and the thorax keep their measured (median) directions in the trunk's frame, so the three
children of each are fitted together exactly when the body is rigid. Per frame, each joint's
rotation turns its rest bones onto the lifted ones: a joint with one child takes the smallest
rotation that aligns the bone (the twist about a bone cannot be seen in joint positions and
is left at zero); the pelvis and thorax, with three children each, take the rotation that
best aligns all three (Kabsch). A BVH skeleton is rigid, so where the lift's bone lengths vary
the file's joints differ from the lift's by that variation.

Axes and units: Y up (Blender's BVH importer default), X the world x, Z = -world y; centimetres;
channels ``Zrotation Xrotation Yrotation`` (degrees, the rotation applied to a child offset
is ``Rz @ Rx @ Ry``); the root also has ``Xposition Yposition Zposition``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from htpose.io import atomic_write
from htpose.skeleton import JOINT_NAMES, PARENTS

UNITS_PER_METRE = 100.0
# Rest-pose bone directions (world, z up) by child joint name.
_REST = {
    "r_hip": (-1, 0, 0), "r_knee": (0, 0, -1), "r_ankle": (0, 0, -1),
    "l_hip": (1, 0, 0), "l_knee": (0, 0, -1), "l_ankle": (0, 0, -1),
    "spine": (0, 0, 1), "thorax": (0, 0, 1), "neck_nose": (0, 0, 1), "head": (0, 0, 1),
    "l_shoulder": (1, 0, 0), "l_elbow": (1, 0, 0), "l_wrist": (1, 0, 0),
    "r_shoulder": (-1, 0, 0), "r_elbow": (-1, 0, 0), "r_wrist": (-1, 0, 0),
}  # fmt: skip
CHILDREN = {j: [c for c, p in enumerate(PARENTS) if p == j] for j in range(len(PARENTS))}


def world_to_bvh_axes(points: np.ndarray) -> np.ndarray:
    """World (x, y, z up) metres -> BVH (X, Y up, Z) centimetres."""
    return np.stack([points[..., 0], points[..., 2], -points[..., 1]], -1) * UNITS_PER_METRE


# Joints with several children, with the two children that define their local frame
# (person's left minus right) and the one that points up.
_BRANCHES = {0: (4, 1, 7), 8: (11, 14, 9)}


def _branch_geometry(joints: np.ndarray, j: int) -> dict[int, np.ndarray]:
    """Median child vectors of branching joint ``j`` in its own frame (x to the person's
    left, z up along the trunk), so the rest pose keeps the body's real proportions and a
    rigid body is fitted exactly."""
    left, right, up = _BRANCHES[j]
    x = joints[:, left] - joints[:, right]
    x /= np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12
    z = joints[:, up] - joints[:, j]
    z -= (z * x).sum(-1, keepdims=True) * x
    z /= np.linalg.norm(z, axis=-1, keepdims=True) + 1e-12
    y = np.cross(z, x)
    frames = np.stack([x, y, z], axis=1)  # (T, 3, 3): rows are the local axes
    return {
        c: np.median(np.einsum("tij,tj->ti", frames, joints[:, c] - joints[:, j]), axis=0)
        for c in CHILDREN[j]
    }


def rest_offsets(joints: np.ndarray) -> np.ndarray:
    """``(17, 3)`` BVH-axis offsets of each joint from its parent in the rest pose: bones of
    single-child joints along the T-pose, children of the pelvis and thorax as measured."""
    offsets = np.zeros((len(PARENTS), 3))
    for j, p in enumerate(PARENTS):
        if p < 0:
            continue
        length = float(np.median(np.linalg.norm(joints[:, j] - joints[:, p], axis=-1)))
        offsets[j] = world_to_bvh_axes(np.array(_REST[JOINT_NAMES[j]], float)) * length
    for j in _BRANCHES:
        for c, vector in _branch_geometry(joints, j).items():
            offsets[c] = world_to_bvh_axes(vector)
    return offsets


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction ``a`` to direction ``b`` (both ``(3,)``)."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(np.dot(a, b))
    if c < -1 + 1e-9:  # opposite: turn half a circle about any axis normal to a
        axis = np.cross(a, [1.0, 0, 0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0, 1.0, 0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotation ``R`` minimising ``|R src_i - dst_i|`` over vectors ``(n, 3)``."""
    u, _, vt = np.linalg.svd(dst.T @ src)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def euler_zxy(rot: np.ndarray) -> np.ndarray:
    """Degrees ``(z, x, y)`` with ``rot = Rz(z) @ Rx(x) @ Ry(y)``."""
    x = np.arcsin(np.clip(rot[2, 1], -1.0, 1.0))
    if abs(rot[2, 1]) < 1 - 1e-9:
        z = np.arctan2(-rot[0, 1], rot[1, 1])
        y = np.arctan2(-rot[2, 0], rot[2, 2])
    else:  # gimbal lock: put it all in z
        z, y = np.arctan2(rot[1, 0], rot[0, 0]), 0.0
    return np.degrees([z, x, y])


def frame_rotations(points: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Local rotations ``(17, 3, 3)`` of one frame of BVH-axis positions ``(17, 3)``.

    Each joint aims its rest bones at where its children are, seen from the joint's own
    position as the file will compute it, so errors do not accumulate down a limb.
    """
    local = np.tile(np.eye(3), (len(PARENTS), 1, 1))
    world_rot = np.tile(np.eye(3), (len(PARENTS), 1, 1))
    placed = np.zeros_like(points)
    placed[0] = points[0]
    for j in range(len(PARENTS)):  # parents come before children in H36M order
        p = PARENTS[j]
        if p >= 0:
            placed[j] = placed[p] + world_rot[p] @ offsets[j]
        kids = CHILDREN[j]
        if not kids:
            world_rot[j] = world_rot[p]
            continue
        parent_rot = world_rot[p] if p >= 0 else np.eye(3)
        targets = np.array([points[c] - placed[j] for c in kids])
        rest = np.array([parent_rot @ offsets[c] for c in kids])
        if len(kids) == 1:
            turn = _align(rest[0], targets[0])
        else:
            turn = _kabsch(rest, targets)
        world_rot[j] = turn @ parent_rot
        local[j] = parent_rot.T @ world_rot[j]
    return local


def _hierarchy(offsets: np.ndarray) -> list[str]:
    lines = ["HIERARCHY"]

    def joint(j: int, depth: int) -> None:
        pad = "  " * depth
        kind = "ROOT" if PARENTS[j] < 0 else "JOINT"
        lines.append(f"{pad}{kind} {JOINT_NAMES[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {' '.join(f'{v:.4f}' for v in offsets[j])}")
        if PARENTS[j] < 0:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition "
                         "Zrotation Xrotation Yrotation")  # fmt: skip
        else:
            lines.append(f"{pad}  CHANNELS 3 Zrotation Xrotation Yrotation")
        kids = CHILDREN[j]
        if kids:
            for c in kids:
                joint(c, depth + 1)
        else:  # a leaf joint: its End Site sits 5 cm on along its bone
            bone = offsets[j] / (np.linalg.norm(offsets[j]) + 1e-9) * 5.0
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {' '.join(f'{v:.4f}' for v in bone)}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    joint(0, 0)
    return lines


def write_bvh(path: str | Path, world_joints: np.ndarray, fps: float) -> Path:
    """Write world joints ``(T, 17, 3)`` (metres, z up) as a BVH file, atomically."""
    points = world_to_bvh_axes(world_joints)
    offsets = rest_offsets(world_joints)
    lines = _hierarchy(offsets)
    lines += ["MOTION", f"Frames: {len(points)}", f"Frame Time: {1.0 / fps:.6f}"]
    for frame in points:
        values = list(frame[0])
        for rot in frame_rotations(frame, offsets):
            values.extend(euler_zxy(rot))
        lines.append(" ".join(f"{v:.4f}" for v in values))
    text = "\n".join(lines) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode()))
    return Path(path)
