"""Make the demo sample that ships in the package from a CMU BVH file (run once, by hand).

    apt-get download assimp-testmodels && dpkg -x assimp-testmodels_*.deb assimp
    python scripts/make_demo_sample.py assimp/usr/share/assimp/models/BVH/Boxing_Toes.bvh

Parses the BVH skeleton and motion, runs forward kinematics, maps the joints to the
Human3.6M-17 skeleton, takes 8 s resampled to 30 fps (a video rate, so the demo exercises
resampling), films it with Human3.6M camera S9/0 from ``../shared``, adds detector-like
noise, and writes ``src/htpose/samples/boxing_coco.json`` (COCO keypoint results, what 2D
detectors write) and ``boxing_3d.npz`` (the mocap truth in camera coordinates, for the
demo's error line).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import torch

from htpose.data.camera import load_h36m_cameras, project, world_to_camera
from htpose.skeleton import JOINT_NAMES

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "htpose" / "samples"


def parse_bvh(text: str):
    """Joints (name, parent, offset, channels, is_end) in file order, frame time, motion."""
    tokens = re.findall(r"[^\s{}]+|[{}]", text.split("MOTION")[0])
    joints, stack, i = [], [], 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in ("ROOT", "JOINT", "End"):
            name = tokens[i + 1] if tok != "End" else f"{joints[stack[-1]][0]}_end"
            joints.append([name, stack[-1] if stack else -1, None, [], tok == "End"])
            i += 2
        elif tok == "{":
            stack.append(len(joints) - 1)
            i += 1
        elif tok == "}":
            stack.pop()
            i += 1
        elif tok == "OFFSET":
            joints[stack[-1]][2] = np.array([float(v) for v in tokens[i + 1 : i + 4]])
            i += 4
        elif tok == "CHANNELS":
            n = int(tokens[i + 1])
            joints[stack[-1]][3] = tokens[i + 2 : i + 2 + n]
            i += 2 + n
        else:
            i += 1
    motion = text.split("MOTION")[1].strip().splitlines()
    frame_time = float(motion[1].split(":")[1])
    data = np.array([[float(v) for v in line.split()] for line in motion[2:] if line.strip()])
    return joints, frame_time, data


def _rot(axis: str, deg: np.ndarray) -> np.ndarray:
    """Right-handed rotations ``(T, 3, 3)`` about one axis, column-vector convention."""
    r = np.radians(deg)
    c, s, z, o = np.cos(r), np.sin(r), np.zeros_like(r), np.ones_like(r)
    rows = {
        "X": [[o, z, z], [z, c, -s], [z, s, c]],
        "Y": [[c, z, s], [z, o, z], [-s, z, c]],
        "Z": [[c, -s, z], [s, c, z], [z, z, o]],
    }[axis]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def forward_kinematics(joints, data: np.ndarray) -> dict[str, np.ndarray]:
    """World positions ``(T, 3)`` of every joint (BVH units, Y up)."""
    t = len(data)
    col = 0
    rots, pos = {}, {}
    for idx, (_, parent, offset, channels, _end) in enumerate(joints):
        local = np.tile(np.eye(3), (t, 1, 1))
        trans = np.tile(offset, (t, 1))
        for ch in channels:
            values = data[:, col]
            col += 1
            if ch.endswith("position"):
                trans[:, "XYZ".index(ch[0])] = values
            else:
                local = local @ _rot(ch[0], values)
        if parent < 0:
            rots[idx], pos[idx] = local, trans
        else:
            rots[idx] = rots[parent] @ local
            pos[idx] = pos[parent] + np.einsum("tij,tj->ti", rots[parent], trans)
    return {joints[k][0]: v for k, v in pos.items()}, {joints[k][0]: v for k, v in rots.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bvh")
    parser.add_argument("--start", type=float, default=4.0, help="seconds into the clip")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    joints, frame_time, data = parse_bvh(Path(args.bvh).read_text())
    pos, rot = forward_kinematics(joints, data)
    p = {k: v / 100.0 for k, v in pos.items()}  # centimetres -> metres

    h36m = {
        "pelvis": p["Hips"], "r_hip": p["RightHip"], "r_knee": p["RightKnee"],
        "r_ankle": p["RightAnkle"], "l_hip": p["LeftHip"], "l_knee": p["LeftKnee"],
        "l_ankle": p["LeftAnkle"], "spine": p["Chest"], "thorax": p["Neck"],
        "neck_nose": (p["Head"] + p["Head_end"]) / 2, "head": p["Head_end"],
        "l_shoulder": p["LeftShoulder"], "l_elbow": p["LeftElbow"], "l_wrist": p["LeftWrist"],
        "r_shoulder": p["RightShoulder"], "r_elbow": p["RightElbow"],
        "r_wrist": p["RightWrist"],
    }  # fmt: skip
    world = np.stack([h36m[n] for n in JOINT_NAMES], axis=1)  # (T, 17, 3), Y up
    # Face parts for COCO: eyes and ears around the head, along the head's own axes.
    head_rot = rot["Head"]
    centre = (p["Head"] + p["Head_end"]) / 2
    side, fwd = head_rot[:, :, 0], head_rot[:, :, 2]
    face = {
        "nose": centre + 0.10 * fwd,
        "l_eye": centre + 0.035 * side + 0.08 * fwd + 0.03 * head_rot[:, :, 1],
        "r_eye": centre - 0.035 * side + 0.08 * fwd + 0.03 * head_rot[:, :, 1],
        "l_ear": centre + 0.075 * side,
        "r_ear": centre - 0.075 * side,
    }

    def to_world(a: np.ndarray) -> np.ndarray:  # Y up -> Z up, centred on the clip
        return np.stack([a[..., 0], -a[..., 2], a[..., 1]], axis=-1)

    src_fps = 1.0 / frame_time
    times = args.start + np.arange(int(args.seconds * args.fps)) / args.fps
    src_idx = times * src_fps

    def at(a: np.ndarray) -> np.ndarray:
        lo = np.floor(src_idx).astype(int)
        w = (src_idx - lo).reshape(-1, *([1] * (a.ndim - 1)))
        return a[lo] * (1 - w) + a[lo + 1] * w

    world = to_world(at(world))
    face = {k: to_world(at(v)) for k, v in face.items()}
    offset = world[:, 0].mean(axis=0) * np.array([1, 1, 0])
    world -= offset
    face = {k: v - offset for k, v in face.items()}

    cam = load_h36m_cameras(REPO.parent / "shared" / "data" / "h36m_cameras.json")["S9"][0]
    intr = cam.intrinsics()

    def film(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = world_to_camera(torch.from_numpy(points), cam)
        return project(c, intr).numpy(), c.numpy()

    px, cam_xyz = film(world)
    face_px = {k: film(v[:, None])[0][:, 0] for k, v in face.items()}
    rng = np.random.default_rng(7)
    coco_names = ["nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder",
                  "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee",
                  "r_knee", "l_ankle", "r_ankle"]  # fmt: skip
    j = {n: i for i, n in enumerate(JOINT_NAMES)}
    entries = []
    for f in range(len(px)):
        pts = []
        for n in coco_names:
            xy = face_px[n][f] if n in face_px else px[f, j[n]]
            xy = xy + rng.normal(0, 2.0, 2)  # detector jitter, pixels
            pts += [round(float(xy[0]), 2), round(float(xy[1]), 2),
                    round(float(rng.uniform(0.75, 0.98)), 3)]  # fmt: skip
        entries.append({"image_id": f, "category_id": 1, "keypoints": pts, "score": 0.95})
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "boxing_coco.json").write_text(json.dumps(entries, separators=(",", ":")))
    root = cam_xyz[:, :1]
    np.savez_compressed(
        OUT / "boxing_3d.npz",
        joints_3d=(cam_xyz - root).astype(np.float32),
        root=root[:, 0].astype(np.float32),
        fps=np.float64(args.fps),
        width=np.int64(cam.width),
        height=np.int64(cam.height),
    )
    print(f"{len(entries)} frames at {args.fps:g} fps -> {OUT}")


if __name__ == "__main__":
    main()
