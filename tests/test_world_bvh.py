"""World frame and BVH: gravity up from the body, and a BVH file that reads back to the lift."""

from __future__ import annotations

import math

import numpy as np

from htpose.bvh import euler_zxy, write_bvh
from htpose.world import to_world


def _rot(axis: str, deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return {
        "x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


def read_bvh(path) -> tuple[list[str], np.ndarray]:
    """An independent minimal BVH reader with forward kinematics: joint names (ROOT/JOINT
    order) and their positions ``(T, J, 3)`` in the file's axes and units."""
    tokens = open(path).read().split()
    names, parents, offsets, channels = [], [], [], []
    stack, i, end_site = [], 0, False
    while tokens[i] != "MOTION":
        t = tokens[i]
        if t in ("ROOT", "JOINT"):
            names.append(tokens[i + 1])
            parents.append(stack[-1] if stack else -1)
            i += 2
        elif t == "End":
            end_site, i = True, i + 2
        elif t == "{":
            stack.append(len(names) - 1 if not end_site else None)
            i += 1
        elif t == "}":
            top = stack.pop()
            end_site = False if top is None else end_site
            i += 1
        elif t == "OFFSET":
            if not end_site:
                offsets.append([float(v) for v in tokens[i + 1 : i + 4]])
            i += 4
        elif t == "CHANNELS":
            n = int(tokens[i + 1])
            channels.append(tokens[i + 2 : i + 2 + n])
            i += 2 + n
        else:
            i += 1
    stack = [p for p in stack if p is not None]
    frames = int(tokens[i + 2])
    values = np.array(tokens[i + 6 :], float).reshape(frames, -1)
    out = np.zeros((frames, len(names), 3))
    for f in range(frames):
        k, rots = 0, []
        for j, ch in enumerate(channels):
            pos = np.zeros(3)
            rot = np.eye(3)
            for c in ch:
                v = values[f, k]
                k += 1
                if c.endswith("position"):
                    pos["XYZ".index(c[0])] = v
                else:
                    rot = rot @ _rot(c[0].lower(), v)
            parent = parents[j]
            if parent < 0:
                out[f, j] = pos + np.array(offsets[j])
                rots.append(rot)
            else:
                out[f, j] = out[f, parent] + rots[parent] @ np.array(offsets[j])
                rots.append(rots[parent] @ rot)
    return names, out


def test_euler_zxy_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(100):
        z, x, y = rng.uniform(-170, 170), rng.uniform(-85, 85), rng.uniform(-170, 170)
        r = _rot("z", z) @ _rot("x", x) @ _rot("y", y)
        np.testing.assert_allclose(euler_zxy(r), [z, x, y], atol=1e-7)


def test_world_frame_recovers_gravity_and_bvh_reads_back(tmp_path, cmu_path):
    from htpose.data.clips import read_clips
    from htpose.data.temporal import resample

    coll = read_clips(cmu_path).select("val")
    world = resample(next(iter(coll.clips.values())), coll.fps)[:150].astype(np.float64)
    # Seen by a camera pitched down 20 degrees and rolled 5: camera axes, y down.
    to_cam = _rot("x", -20) @ _rot("z", 5) @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    cam = (world - world[:1, :1] + [0, 0, 0]) @ to_cam.T + [0.2, 0.3, 6.0]
    joints, root = cam - cam[:, :1], cam[:, 0]
    out, rot = to_world(joints, root)
    # Up is recovered to within the body's mean lean (a few degrees).
    up_true = to_cam @ np.array([0, 0, 1.0])
    up_est = rot[2]
    assert math.degrees(math.acos(np.clip(up_est @ up_true, -1, 1))) < 8
    # Heights above the floor are right up to that tilt: the head is 1.5-1.9 m up.
    head = out[:, 10, 2].mean()
    assert 1.4 < head < 2.0 and abs(out[:, [3, 6], 2].min()) < 1e-9
    # The BVH file reads back (independent parser) to the lifted joints.
    path = write_bvh(tmp_path / "m.bvh", out, fps=50)
    names, positions = read_bvh(path)
    assert names[0] == "pelvis" and len(names) == 17
    bvh_world = np.stack([positions[..., 0], -positions[..., 2], positions[..., 1]], -1) / 100
    err = np.linalg.norm(bvh_world - out, axis=-1)
    # Mocap bones are rigid, so the file reproduces the joints closely.
    assert err.mean() < 0.01 and err.max() < 0.05, (err.mean(), err.max())


def test_lift_writes_world_and_bvh(tmp_path, capsys):
    from htpose.cli import main

    rng = np.random.default_rng(0)
    kp = tmp_path / "kp.npz"
    base = np.array(
        [[500, 300], [480, 300], [478, 400], [476, 500], [520, 300], [522, 400], [524, 500],
         [500, 250], [500, 200], [500, 185], [500, 165], [530, 205], [545, 250], [550, 295],
         [470, 205], [455, 250], [450, 295]],
        float,
    )  # fmt: skip
    np.savez(kp, keypoints=base + rng.normal(0, 1, (40, 17, 2)), fps=np.float64(30),
             width=1000, height=1000)  # fmt: skip
    out = tmp_path / "o.npz"
    args = ["lift", str(kp), "-o", str(out), "--world", "--bvh", str(tmp_path / "m.bvh"),
            "--hypotheses", "1", "--steps", "1", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    data = np.load(out)
    assert data["joints_world"].shape == (40, 17, 3)
    assert data["joints_world"][:, 10, 2].mean() > data["joints_world"][:, 0, 2].mean()
    names, positions = read_bvh(tmp_path / "m.bvh")
    assert positions.shape == (40, 17, 3)
    capsys.readouterr()
    args = ["lift", str(kp), "-o", str(tmp_path / "p.npz"), "--bvh", str(tmp_path / "m.txt")]
    assert main(args) == 2 and not (tmp_path / "p.npz").exists()
