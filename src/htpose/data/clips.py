"""The clip collection: htpose's own pickle-free format for 3D motion.

An ``.npz`` whose every key is a clip name (``/`` allowed) holding ``(T, 17, 3)`` float32
world positions in metres, Z up, and beside it an optional ``.json`` with ``fps``,
``joints``, ``splits`` (``{"train": [...], ...}``) and optionally ``actions``
(``{clip: action}``).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from htpose.errors import DataError
from htpose.io import atomic_write, open_npz, read_json, read_npz_array, write_json
from htpose.skeleton import JOINT_NAMES, NUM_JOINTS


@dataclass
class ClipCollection:
    """Named 3D clips ``(T, J, 3)`` (world, metres, Z up) with their frame rate and splits."""

    clips: dict[str, np.ndarray]
    fps: float
    splits: dict[str, list[str]] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)

    def action_of(self, name: str) -> str:
        """The clip's action: the JSON's ``actions`` entry, else its folder, else its stem.

        ``train/walking/walking_3`` -> ``walking``; ``Walking 1`` -> ``Walking``.
        """
        if name in self.actions:
            return self.actions[name]
        parts = name.split("/")
        if len(parts) >= 2:
            return parts[-2]
        return re.sub(r"[\s_]*\d+$", "", parts[-1]) or parts[-1]

    def select(self, split: str | None) -> ClipCollection:
        """The clips of one split (all clips when ``split`` is None or ``"all"``)."""
        if split is None or split == "all":
            return self
        if split not in self.splits:
            known = ", ".join(sorted(self.splits)) or "none"
            raise DataError(f"split {split!r} is not in this collection (splits: {known})")
        names = self.splits[split]
        return ClipCollection(
            {n: self.clips[n] for n in names}, self.fps, {split: list(names)}, self.actions
        )

    def tilted(self, angle: float, seed: int = 0) -> ClipCollection:
        """Every clip rotated by ``angle`` degrees about a horizontal axis through its mean
        pelvis (axis direction drawn per clip from ``seed``), lowest joint on the floor: the
        evaluation of bodies lying (90), bending over or upside down (180)."""
        from htpose.data.augment import tilt_by

        clips = {}
        for i, (name, clip) in enumerate(self.clips.items()):
            heading = np.random.default_rng([seed, i]).uniform(0, 2 * np.pi)
            clips[name] = tilt_by(clip.astype(np.float64), angle, heading).astype(np.float32)
        return ClipCollection(clips, self.fps, self.splits, self.actions)

    @property
    def num_frames(self) -> int:
        return sum(len(c) for c in self.clips.values())


def _validate_clip(name: str, arr: np.ndarray, source: Path) -> np.ndarray:
    if arr.ndim != 3 or arr.shape[1:] != (NUM_JOINTS, 3):
        raise DataError(
            f"{source}: clip {name!r} has shape {arr.shape}; expected (frames, {NUM_JOINTS}, 3)"
        )
    if arr.shape[0] < 1:
        raise DataError(f"{source}: clip {name!r} has no frames")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise DataError(f"{source}: clip {name!r} has non-numeric dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise DataError(f"{source}: clip {name!r} contains NaN or infinite values")
    return arr


def read_clips(path: str | Path, fps: float | None = None) -> ClipCollection:
    """Read a clip collection and its sibling ``.json``; ``fps`` overrides the JSON's rate."""
    path = Path(path)
    archive = open_npz(path)
    with archive:
        if not archive.files:
            raise DataError(f"{path}: the archive holds no clips")
        clips = {
            k: _validate_clip(k, read_npz_array(archive, k, path), path) for k in archive.files
        }
    meta_path = path.with_suffix(".json")
    meta = read_json(meta_path, "clip collection metadata") if meta_path.exists() else {}
    if not isinstance(meta, dict):
        raise DataError(f"{meta_path}: expected a JSON object")
    joints = meta.get("joints")
    if joints is not None and list(joints) != list(JOINT_NAMES):
        raise DataError(f"{meta_path}: 'joints' is not the Human3.6M-17 order htpose uses")
    rate = fps if fps is not None else meta.get("fps")
    if rate is None:
        raise DataError(f"{path}: no frame rate: add 'fps' to {meta_path.name} or pass --fps")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 10_000:
        raise DataError(f"{path}: invalid frame rate {rate!r}")
    splits = meta.get("splits", {})
    if not isinstance(splits, dict) or not all(
        isinstance(v, list) and all(isinstance(n, str) for n in v) for v in splits.values()
    ):
        raise DataError(f"{meta_path}: 'splits' must map split names to lists of clip names")
    for split, names in splits.items():
        missing = [n for n in names if n not in clips]
        if missing:
            raise DataError(f"{meta_path}: split {split!r} names missing clip {missing[0]!r}")
    actions = meta.get("actions", {})
    if not isinstance(actions, dict) or not all(isinstance(v, str) for v in actions.values()):
        raise DataError(f"{meta_path}: 'actions' must map clip names to action names")
    return ClipCollection(clips, float(rate), splits, {str(k): str(v) for k, v in actions.items()})


def write_clips(path: str | Path, collection: ClipCollection) -> None:
    """Write a clip collection (``.npz`` + ``.json``), each file atomically."""
    path = Path(path)
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: v.astype(np.float32) for k, v in collection.clips.items()})
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))
    meta = {
        "fps": collection.fps,
        "joints": list(JOINT_NAMES),
        "splits": collection.splits,
        "frames": {k: int(len(v)) for k, v in collection.clips.items()},
    }
    if collection.actions:
        meta["actions"] = collection.actions
    write_json(path.with_suffix(".json"), meta)
