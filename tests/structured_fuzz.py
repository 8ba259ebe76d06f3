"""Structure-aware fuzzing: valid-looking files of every format, then mutated.

Random bytes almost never parse, so they test only the first line of a reader. Here each
format has a generator of valid documents (right keys, types, shapes and plausible values)
and a set of mutations applied to one to three random places: a value replaced by another
type (string, boolean, null, list, object), by an extreme number (NaN, inf, -1, 0, 1e30,
2**63), a key deleted or added, a list emptied, repeated or nested deeper, the file cut short
or a byte flipped. So most inputs reach the code that reads fields, maps layouts, fills
joints and lifts. Used by ``tests/test_fuzz.py`` (a few hundred cases) and
``benchmarks/fuzz_readers.py`` (10,000 per reader, with outcome counts).
"""

from __future__ import annotations

import copy
import io
import json
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

EXTREMES: list[Any] = [
    float("nan"), float("inf"), -float("inf"), -1, 0, 1e30, -1e30, 2**63, 1e-300, True,
    False, None, "", "12", "x" * 50, [], {}, [1, 2], {"a": 1}, [[[]]], 0.5,
]  # fmt: skip


# -- valid documents ---------------------------------------------------------------------


# A standing figure in image pixels, by keypoint name.
_FIGURE = {
    "nose": (400, 150), "l_eye": (405, 145), "r_eye": (395, 145), "l_ear": (410, 148),
    "r_ear": (390, 148), "l_sh": (430, 190), "r_sh": (370, 190), "l_el": (440, 240),
    "r_el": (360, 240), "l_wr": (445, 285), "r_wr": (355, 285), "l_hip": (420, 300),
    "r_hip": (380, 300), "l_kn": (422, 370), "r_kn": (378, 370), "l_an": (424, 440),
    "r_an": (376, 440), "neck": (400, 190), "mid_hip": (400, 300),
}  # fmt: skip
_COCO = ["nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_sh", "r_sh", "l_el", "r_el", "l_wr",
         "r_wr", "l_hip", "r_hip", "l_kn", "r_kn", "l_an", "r_an"]  # fmt: skip
_ORDERS = {
    17: _COCO,
    18: ["nose", "neck", "r_sh", "r_el", "r_wr", "l_sh", "l_el", "l_wr", "r_hip", "r_kn", "r_an",
         "l_hip", "l_kn", "l_an", "r_eye", "l_eye", "r_ear", "l_ear"],
    25: ["nose", "neck", "r_sh", "r_el", "r_wr", "l_sh", "l_el", "l_wr", "mid_hip", "r_hip",
         "r_kn", "r_an", "l_hip", "l_kn", "l_an", "r_eye", "l_eye", "r_ear", "l_ear"]
        + ["l_an", "l_an", "l_an", "r_an", "r_an", "r_an"],  # BODY_25's feet
}  # fmt: skip


def _person(rng: random.Random, n: int, frame: int = 0, dims: int = 3) -> list[float]:
    """A plausible person with ``n`` keypoints (COCO order first for 26/133; BODY_25 for 25),
    walking right by 3 px a frame, with a little jitter."""
    order = _ORDERS.get(n) or (_COCO + ["r_an"] * (n - 17))
    out: list[float] = []
    for name in order:
        x, y = _FIGURE[name]
        out += [x + 3 * frame + rng.uniform(-2, 2), y + rng.uniform(-2, 2)][: min(dims, 2)]
        if dims == 3:
            out.append(round(rng.uniform(0.4, 1.0), 3))
    return out


def coco_results(rng: random.Random) -> Any:
    frames = rng.randint(1, 30)
    ids: list[Any] = list(range(frames))
    if rng.random() < 0.3:
        ids = [f"{i}.jpg" for i in ids]
    return [
        {"image_id": ids[i], "category_id": 1, "keypoints": _person(rng, 17, i), "score": 0.9}
        for i in range(frames)
        for _ in range(rng.randint(1, 2))
    ]


def coco_dataset(rng: random.Random) -> Any:
    frames = rng.randint(1, 20)
    images = [{"id": i, "width": 1280, "height": 720, "file_name": f"{i}.jpg"} for i in
              range(frames)]  # fmt: skip
    anns = []
    for i in range(frames):
        flags = [v if k % 3 != 2 else 2 for k, v in enumerate(_person(rng, 17, i))]
        anns.append({"image_id": i, "id": i, "keypoints": flags, "num_keypoints": 17})
    return {"images": images, "annotations": anns}


def mmpose(rng: random.Random) -> Any:
    frames = rng.randint(1, 20)
    out = []
    for i in range(frames):
        kp = np.array(_person(rng, 17, i, dims=2)).reshape(17, 2).tolist()
        out.append({"frame_id": i, "instances": [{"keypoints": kp,
                    "keypoint_scores": [0.9] * 17, "bbox": [[0, 0, 10, 10]]}]})  # fmt: skip
    return out


def openpose(rng: random.Random) -> Any:
    n = rng.choice([25, 18])
    return {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d":
            _person(rng, n, rng.randint(0, 9))} for _ in range(rng.randint(1, 2))]}  # fmt: skip


def mediapipe_json(rng: random.Random) -> Any:
    frames = []
    for _ in range(rng.randint(1, 20)):
        lms = [{"x": rng.uniform(0.3, 0.7), "y": rng.uniform(0.2, 0.9),
                "z": rng.uniform(-0.1, 0.1), "visibility": rng.uniform(0.5, 1)}
               for _ in range(33)]  # fmt: skip
        frames.append(lms if rng.random() < 0.5 else {"landmarks": lms})
    return frames


def mediapipe_csv(rng: random.Random) -> str:
    rows = []
    header = ["frame"] + [f"{c}{i}" for i in range(33) for c in ("x", "y", "z", "v")]
    rows.append(",".join(header))
    for f in range(rng.randint(1, 20)):
        vals = [str(f)]
        for _ in range(33):
            vals += [f"{rng.uniform(0.3, 0.7):.4f}", f"{rng.uniform(0.2, 0.9):.4f}", "0.0",
                     f"{rng.uniform(0.5, 1):.3f}"]  # fmt: skip
        rows.append(",".join(vals))
    return "\n".join(rows) + "\n"


def yolo_labels(rng: random.Random) -> str:
    """One Ultralytics pose label file: a line per person, fractions of a 800x600 image."""
    lines = []
    for i in range(rng.randint(1, 3)):
        pts = np.array(_person(rng, 17, i)).reshape(17, 3) / [800, 600, 1]
        per = rng.choice([2, 3])
        vals = [0, 0.5, 0.5, 0.3, 0.8, *pts[:, :per].reshape(-1)]
        lines.append(" ".join(f"{v:.5f}" for v in vals + ([0.9] if rng.random() < 0.5 else [])))
    return "\n".join(lines) + "\n"


def numpy_keypoints(rng: random.Random) -> dict[str, np.ndarray]:
    t = rng.randint(1, 40)
    kp = np.array([_person(rng, 17, i) for i in range(t)]).reshape(t, 17, 3)
    out = {"keypoints": kp[..., :2] if rng.random() < 0.5 else kp}
    if rng.random() < 0.7:
        out.update(fps=np.float64(rng.choice([24, 30, 50, 60])), width=np.int64(1280),
                   height=np.int64(720))  # fmt: skip
    return out


def cameras(rng: random.Random, real: dict | None = None) -> Any:
    if real is not None:
        return copy.deepcopy(real)
    intr = [{"id": str(i), "center": [500.0, 500.0], "focal_length": [1145.0, 1144.0],
             "radial_distortion": [-0.2, 0.2, 0.0], "tangential_distortion": [0.0, 0.0],
             "res_w": 1000, "res_h": 1002} for i in range(2)]  # fmt: skip
    extr = {"S9": [{"orientation": [0.14, -0.77, 0.6, -0.15], "translation": [1800, 2000, 1500]}
                   for _ in range(2)]}  # fmt: skip
    return {"intrinsics": intr, "extrinsics": extr}


def config(rng: random.Random) -> Any:
    return {
        "name": "fuzz",
        "model": {
            "frames": rng.choice([9, 27]),
            "width": 16,
            "depth": 2,
            "heads": 2,
            "pruning": {"tcep": True, "keep_ratio": 0.5, "mgptp": True, "mgptp_layer": 1},
        },  # fmt: skip
        "data": {
            "noise_prob": 0.5,
            "cameras": {"enabled": True, "height": [0.5, 3.0]},
            "pose": {"tilt_prob": 0.1},
        },  # fmt: skip
        "diffusion": {"sampling_steps": 2, "hypotheses": 2},
        "train": {"steps": 3, "lr": 0.001, "batch_size": 2},
        "eval": {"overlap": 0.5},
    }


def clip_collection(rng: random.Random) -> tuple[dict[str, np.ndarray], Any]:
    names = [f"train/walk/c{i}" for i in range(rng.randint(1, 3))]
    clips = {
        n: (np.random.default_rng(rng.randint(0, 99)).normal(0, 0.3, (rng.randint(2, 60), 17, 3))
            + [0, 0, 1]).astype(np.float32)
        for n in names
    }  # fmt: skip
    meta = {"fps": 120, "splits": {"train": names[:1], "test": names[1:]}}
    return clips, meta


# -- mutations ---------------------------------------------------------------------------


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:40]):
            out += _paths(v, (*prefix, i))
    return out


def _get(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _set(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def mutate_doc(doc: Any, rng: random.Random) -> Any:
    """One to three structural mutations of a JSON-like document."""
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        paths = _paths(doc)
        path = rng.choice(paths)
        node = _get(doc, path)
        kind = rng.random()
        if kind < 0.45:
            doc = _set(doc, path, copy.deepcopy(rng.choice(EXTREMES)))
        elif kind < 0.55 and path:
            parent = _get(doc, path[:-1])
            if isinstance(parent, dict):
                del parent[path[-1]]
            elif isinstance(parent, list) and parent:
                parent.pop(path[-1])
        elif kind < 0.65 and isinstance(node, dict):
            node[rng.choice(["extra", "width", "fps", "instances", "people"])] = rng.choice(
                EXTREMES
            )
        elif kind < 0.75 and isinstance(node, list):
            doc = _set(doc, path, node * rng.choice([0, 2, 7]))
        elif kind < 0.85:
            doc = _set(doc, path, [node] if rng.random() < 0.5 else {"x": node})
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            doc = _set(doc, path, node * rng.choice([-1, 1e6, 1e-6, 0]))
        else:
            doc = _set(doc, path, str(node)[:20])
    return doc


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """Cut short, flip a byte, or insert junk (rarely: mutations above do most of the work)."""
    if not data:
        return data
    kind = rng.random()
    if kind < 0.4:
        return data[: rng.randint(0, len(data) - 1)]
    buf = bytearray(data)
    if kind < 0.8:
        i = rng.randrange(len(buf))
        buf[i] = rng.randrange(256)
        return bytes(buf)
    i = rng.randrange(len(buf) + 1)
    return (
        bytes(buf[:i])
        + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        + bytes(buf[i:])
    )


def mutate_arrays(arrays: dict[str, np.ndarray], rng: random.Random) -> dict[str, np.ndarray]:
    """Mutate an npz's arrays: values, dtypes, shapes, keys."""
    out = {k: np.array(v, copy=True) for k, v in arrays.items()}
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(list(out))
        arr = out[key]
        kind = rng.random()
        if kind < 0.3 and arr.size and arr.dtype.kind in "fc":
            flat = arr.reshape(-1)
            flat[rng.randrange(flat.size)] = rng.choice([np.nan, np.inf, -1e30, 1e30, 0, -1])
        elif kind < 0.45:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    out[key] = arr.astype(rng.choice(["<i8", "<f2", "|b1", "<U3", "<c8", "|u1"]))
                except (ValueError, OverflowError):
                    pass  # a cast numpy itself refuses: not a file anyone could write
        elif kind < 0.6 and arr.ndim:
            out[key] = arr.reshape(-1)[: max(0, arr.size - rng.randint(0, 5))]
        elif kind < 0.7:
            out[key] = np.array(rng.choice([0.0, -5.0, 1e-9, 1e12, np.nan]))
        elif kind < 0.8:
            del out[key]
            if not out:
                out["other"] = np.zeros(3)
        elif kind < 0.9:
            out[rng.choice(["fps", "width", "height", "scores", "keypoints"])] = np.array(
                rng.choice([[1, 2], 3.0, -1, np.nan, "30"])
            )
        else:
            out[key] = np.repeat(arr, rng.choice([0, 2]), axis=0) if arr.ndim else arr
    return out


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


# -- one case per reader -----------------------------------------------------------------


def json_case(make: Callable[[random.Random], Any]) -> Callable[[random.Random], bytes]:
    def case(rng: random.Random) -> bytes:
        doc = make(rng)
        if rng.random() < 0.9:
            doc = mutate_doc(doc, rng)
        data = json.dumps(doc, allow_nan=True).encode()
        return mutate_bytes(data, rng) if rng.random() < 0.1 else data

    return case


def write_case(reader: str, rng: random.Random, folder: Path, real_cameras: dict | None) -> Path:
    """Write one fuzzed input for ``reader`` into ``folder``; returns the path to read."""
    json_makers = {
        "coco_results": coco_results,
        "coco_dataset": coco_dataset,
        "mmpose": mmpose,
        "openpose": openpose,
        "mediapipe_json": mediapipe_json,
    }
    if reader in json_makers:
        path = folder / ("pose_keypoints.json" if reader == "openpose" else f"{reader}.json")
        path.write_bytes(json_case(json_makers[reader])(rng))
    elif reader == "mediapipe_csv":
        path = folder / "landmarks.csv"
        text = mediapipe_csv(rng)
        lines = text.splitlines()
        if rng.random() < 0.8 and len(lines) > 1:
            i = rng.randrange(1, len(lines))
            cells = lines[i].split(",")
            cells[rng.randrange(len(cells))] = str(rng.choice(EXTREMES))
            if rng.random() < 0.3:
                cells = cells[: rng.randrange(len(cells))]
            lines[i] = ",".join(cells)
        data = ("\n".join(lines) + "\n").encode()
        path.write_bytes(mutate_bytes(data, rng) if rng.random() < 0.1 else data)
    elif reader == "yolo":
        path = folder / "labels"
        path.mkdir()
        for n in range(rng.randint(1, 5)):
            words = yolo_labels(rng).split(" ")
            for _ in range(rng.randint(0, 2)):
                words[rng.randrange(len(words))] = str(rng.choice(EXTREMES))
            data = " ".join(words).encode()
            name = f"clip_{rng.randint(1, 12)}.txt" if rng.random() < 0.8 else f"{n}a.txt"
            (path / name).write_bytes(mutate_bytes(data, rng) if rng.random() < 0.1 else data)
    elif reader == "numpy_npz":
        path = folder / "kp.npz"
        arrays = numpy_keypoints(rng)
        data = npz_bytes(mutate_arrays(arrays, rng) if rng.random() < 0.9 else arrays)
        path.write_bytes(mutate_bytes(data, rng) if rng.random() < 0.1 else data)
    elif reader == "cameras":
        path = folder / "cams.json"
        path.write_bytes(json_case(lambda r: cameras(r, real_cameras))(rng))
    elif reader == "config":
        path = folder / "cfg.yaml"
        doc = mutate_doc(config(rng), rng) if rng.random() < 0.9 else config(rng)
        try:
            text = yaml.safe_dump(doc)
        except yaml.YAMLError:
            text = json.dumps(doc, default=str)
        path.write_bytes(mutate_bytes(text.encode(), rng) if rng.random() < 0.1 else text.encode())
    elif reader == "clips":
        path = folder / "clips.npz"
        clips, meta = clip_collection(rng)
        if rng.random() < 0.6:
            clips = mutate_arrays(clips, rng)
        if rng.random() < 0.6:
            meta = mutate_doc(meta, rng)
        path.write_bytes(npz_bytes(clips))
        path.with_suffix(".json").write_text(json.dumps(meta, allow_nan=True))
    else:
        raise ValueError(reader)
    return path


READERS = (
    "coco_results", "coco_dataset", "mmpose", "openpose", "mediapipe_json", "mediapipe_csv",
    "yolo", "numpy_npz", "cameras", "config", "clips",
)  # fmt: skip


def read_case(reader: str, path: Path) -> Any:
    """Read a case with the reader htpose uses for that format."""
    if reader in ("coco_results", "coco_dataset", "mmpose"):
        from htpose.data.keypoints import read_keypoints

        return read_keypoints(path, "coco")
    if reader == "openpose":
        from htpose.data.keypoints import read_keypoints

        return read_keypoints(path, "openpose")
    if reader in ("mediapipe_json", "mediapipe_csv"):
        from htpose.data.keypoints import read_keypoints

        return read_keypoints(path, "mediapipe")
    if reader in ("numpy_npz", "yolo"):
        from htpose.data.keypoints import read_keypoints

        return read_keypoints(path, "numpy" if reader == "numpy_npz" else "yolo")
    if reader == "cameras":
        from htpose.data.camera import load_h36m_cameras

        return load_h36m_cameras(path)
    if reader == "config":
        from htpose.config import load_config

        return load_config(path)
    from htpose.data.clips import read_clips

    return read_clips(path)
