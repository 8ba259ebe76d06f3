"""Human3.6M in the layout every lifter uses (VideoPose3D's preprocessed ``.npz`` files).

``data_3d_h36m.npz``: ``positions_3d[subject][action]`` = ``(T, 32, 3)`` world metres.
``data_2d_h36m_<detector>.npz``: ``positions_2d[subject][action]`` = 4 arrays
``(T, 17, 2)`` pixels, one per camera, in the Human3.6M-17 order.

Both files are pickled dictionaries, which can run code when loaded: they are read only
when the caller passes ``allow_pickle=True`` (the CLI's ``--allow-pickle``), and
:func:`convert_h36m` turns them into htpose's pickle-free formats once.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np

from htpose.data.clips import ClipCollection, write_clips
from htpose.errors import DataError
from htpose.io import OutputSet, atomic_write, numeric_array, open_npz, read_npz_array

# The 17 of the 32 original joints kept by every Human3.6M lifter, in htpose order.
KEPT_JOINTS = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
FPS = 50.0
NUM_VIEWS = 4


def _load_pickled_dict(path: str | Path, key: str, allow_pickle: bool) -> dict:
    if not allow_pickle:
        raise DataError(
            f"{path} is a pickled Human3.6M file; pass --allow-pickle if you trust it "
            "(or convert it once with 'htpose convert-h36m')"
        )
    archive = open_npz(path, allow_pickle=True)
    with archive:
        if key not in archive.files:
            raise DataError(f"{path}: no {key!r} entry; is this a Human3.6M file?")
        try:
            value = archive[key]
            value = value.item() if value.dtype == object else value
        except Exception as exc:
            raise DataError(f"{path}: {key!r} cannot be read: {exc}") from exc
    if not isinstance(value, dict):
        raise DataError(f"{path}: {key!r} is not a subject -> action dictionary")
    return value


def action_name(action: str) -> str:
    """``"Walking 1"`` -> ``"Walking"``; ``"WalkDog"`` -> ``"WalkDog"``."""
    return re.sub(r"\s*\d+$", "", action) or action


def read_h36m_3d(path: str | Path, allow_pickle: bool = False) -> ClipCollection:
    """Read ``data_3d_h36m.npz`` as a clip collection named ``"<subject>/<action>"``."""
    positions = _load_pickled_dict(path, "positions_3d", allow_pickle)
    clips: dict[str, np.ndarray] = {}
    for subject, actions in positions.items():
        if not isinstance(actions, dict):
            raise DataError(f"{path}: positions_3d[{subject!r}] is not an action dictionary")
        for action, arr in actions.items():
            arr = numeric_array(arr, f"{path}: positions_3d[{subject!r}][{action!r}]")
            if arr.ndim != 3 or arr.shape[1] not in (17, 32) or arr.shape[2] != 3:
                raise DataError(
                    f"{path}: positions_3d[{subject!r}][{action!r}] has shape {arr.shape}; "
                    "expected (frames, 32, 3)"
                )
            if not np.isfinite(arr).all():
                raise DataError(f"{path}: positions_3d[{subject!r}][{action!r}] is not finite")
            kept = arr[:, KEPT_JOINTS] if arr.shape[1] == 32 else arr
            clips[f"{subject}/{action}"] = kept.astype(np.float32)
    if not clips:
        raise DataError(f"{path}: no sequences")
    splits = {
        "train": [k for k in clips if k.split("/")[0] in TRAIN_SUBJECTS],
        "test": [k for k in clips if k.split("/")[0] in TEST_SUBJECTS],
    }
    actions = {k: action_name(k.split("/", 1)[1]) for k in clips}
    return ClipCollection(clips, FPS, splits, actions)


def read_h36m_2d(path: str | Path, allow_pickle: bool = False) -> dict[tuple[str, int], np.ndarray]:
    """Read ``data_2d_h36m_<det>.npz``: ``{("S9/Walking 1", view): (T, 17, 2) pixels}``."""
    positions = _load_pickled_dict(path, "positions_2d", allow_pickle)
    out: dict[tuple[str, int], np.ndarray] = {}
    for subject, actions in positions.items():
        if not isinstance(actions, dict):
            raise DataError(f"{path}: positions_2d[{subject!r}] is not an action dictionary")
        for action, views in actions.items():
            if not isinstance(views, (list, tuple)) or len(views) != NUM_VIEWS:
                raise DataError(f"{path}: positions_2d[{subject!r}][{action!r}] is not 4 views")
            for view, arr in enumerate(views):
                arr = numeric_array(arr, f"{path}: positions_2d[{subject!r}][{action!r}][{view}]")
                if arr.ndim != 3 or arr.shape[1:] != (17, 2):
                    raise DataError(
                        f"{path}: positions_2d[{subject!r}][{action!r}][{view}] has shape "
                        f"{arr.shape}; expected (frames, 17, 2)"
                    )
                if not np.isfinite(arr).all():
                    raise DataError(
                        f"{path}: positions_2d[{subject!r}][{action!r}][{view}] is not finite"
                    )
                out[(f"{subject}/{action}", view)] = arr.astype(np.float32)
    return out


def read_keypoints_2d(
    path: str | Path, allow_pickle: bool = False
) -> dict[tuple[str, int], np.ndarray]:
    """Read 2D detections: a pickled Human3.6M file or a converted ``"<clip>#<view>"`` npz."""
    archive = open_npz(path)
    with archive:
        files = list(archive.files)
        if "positions_2d" in files:
            return read_h36m_2d(path, allow_pickle)
        out = {}
        for key in files:
            clip, _, view = key.rpartition("#")
            if not clip or not view.isdigit():
                raise DataError(f"{path}: key {key!r} is not '<clip>#<view>'")
            arr = read_npz_array(archive, key, path)
            if arr.ndim != 3 or arr.shape[1:] != (17, 2) or not np.isfinite(arr).all():
                raise DataError(f"{path}: {key!r} must be finite (frames, 17, 2), got {arr.shape}")
            out[(clip, int(view))] = arr.astype(np.float32)
    return out


def convert_h36m(
    path_3d: str | Path,
    out: str | Path,
    path_2d: str | Path | None = None,
    allow_pickle: bool = False,
) -> list[Path]:
    """Convert the pickled files to a clip collection (+ a ``<out>_2d.npz``); returns paths.

    The inputs are pickles: nothing is read unless ``allow_pickle``. Every input is read and
    checked before anything is written, no output may replace an input, and the outputs are
    written all or none.
    """
    out = Path(out)
    if out.suffix.lower() != ".npz":
        raise DataError(f"--out must name a .npz file, got {out.name!r}")
    targets = [out, out.with_suffix(".json")]
    if path_2d is not None:
        targets.append(out.with_name(out.stem + "_2d.npz"))
    inputs = [path_3d] + ([path_2d] if path_2d is not None else [])
    outputs = OutputSet(targets, inputs)
    collection = read_h36m_3d(path_3d, allow_pickle=allow_pickle)
    det = read_h36m_2d(path_2d, allow_pickle=allow_pickle) if path_2d is not None else None
    with outputs:
        staged_clips = outputs.stage(targets[0])
        write_clips(staged_clips, collection)
        # write_clips puts the metadata beside its .npz; move it to its own staged name.
        os.replace(staged_clips.with_suffix(".json"), outputs.stage(targets[1]))
        if det is not None:
            buf = io.BytesIO()
            np.savez_compressed(buf, **{f"{clip}#{view}": arr for (clip, view), arr in det.items()})
            atomic_write(outputs.stage(targets[2]), lambda fh: fh.write(buf.getvalue()))
    return targets
