"""MPI-INF-3DHP in the preprocessed ``.npz`` layout of the lifters that report it (P-STMO's).

``np.load(f, allow_pickle=True)["data"].item()`` gives, for the test file,
``{"TS1": {"data_2d": (T, 17, 2) px, "data_3d": (T, 17, 3) mm, "valid": (T,)}, ...}`` and
for the training file ``{"S1 Seq1": [{camera: {"data_2d", "data_3d"}}, fps], ...}``.
Joints come in 3DHP order and are reordered to Human3.6M-17 here (see ``TO_H36M``).

The files carry no intrinsics, so the sequences' cameras are marked uncalibrated: mean,
P-Best and J-Best work, JPMA does not. Frame rates are taken as the model rate (the
preprocessed files are used that way by every published lifter); pass ``fps`` to resample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from htpose.data.camera import Camera
from htpose.data.sequences import Sequence
from htpose.data.temporal import MODEL_FPS, resample
from htpose.errors import DataError
from htpose.io import numeric_array, open_npz

# 3DHP order: 0 head top, 1 neck, 2-4 R shoulder/elbow/wrist, 5-7 L shoulder/elbow/wrist,
# 8-10 R hip/knee/ankle, 11-13 L hip/knee/ankle, 14 pelvis, 15 spine, 16 head.
TO_H36M = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)
# The 14 joints PCK and AUC are computed over: all but pelvis, spine and head (H36M indices).
PCK_JOINTS = tuple(j for j in range(17) if j not in (0, 7, 9))
IMAGE_SIZE = {"TS5": (1920, 1080), "TS6": (1920, 1080)}
DEFAULT_IMAGE_SIZE = (2048, 2048)


def _camera(name: str, size: tuple[int, int]) -> Camera:
    w, h = size
    return Camera(
        name, (float(w), float(w)), (w / 2, h / 2), (0, 0, 0), (0, 0), w, h, calibrated=False
    )


def _sequence(
    name: str, entry: dict, size: tuple[int, int], source: Path, fps: float | None
) -> Sequence:
    if not isinstance(entry, dict) or "data_2d" not in entry or "data_3d" not in entry:
        raise DataError(f"{source}: {name!r} lacks 'data_2d'/'data_3d'")
    kp = numeric_array(entry["data_2d"], f"{source}: {name!r} 'data_2d'")
    j3 = numeric_array(entry["data_3d"], f"{source}: {name!r} 'data_3d'")
    if kp.ndim != 3 or kp.shape[1:] != (17, 2) or j3.shape != (len(kp), 17, 3):
        raise DataError(
            f"{source}: {name!r} has shapes {kp.shape} / {j3.shape}; expected (T, 17, 2|3)"
        )
    if len(kp) == 0 or not (np.isfinite(kp).all() and np.isfinite(j3).all()):
        raise DataError(f"{source}: {name!r} is empty or not finite")
    valid = numeric_array(entry.get("valid", np.ones(len(kp))), f"{source}: {name!r} 'valid'")
    valid = valid.reshape(-1)
    if valid.shape != (len(kp),):
        raise DataError(f"{source}: {name!r} 'valid' has {valid.shape[0]} frames, not {len(kp)}")
    kp, j3 = kp[:, TO_H36M], j3[:, TO_H36M] / 1000.0
    if fps is not None and fps != MODEL_FPS:
        kp, j3 = resample(kp, fps), resample(j3, fps)
        valid = resample(valid[:, None], fps)[:, 0] > 0.5
    root = j3[:, 0].copy()
    return Sequence(
        name=name,
        action=name.split(" ")[0].split("/")[0],
        keypoints_2d=kp.astype(np.float32),
        camera=_camera(name, size),
        joints_3d=(j3 - root[:, None]).astype(np.float32),
        root=root.astype(np.float32),
        valid=valid.astype(bool),
    )


def read_3dhp(
    path: str | Path, allow_pickle: bool = False, fps: float | None = None
) -> list[Sequence]:
    """Read a preprocessed 3DHP test or training file into sequences (H36M joint order)."""
    path = Path(path)
    if not allow_pickle:
        raise DataError(
            f"{path} is a pickled MPI-INF-3DHP file; pass --allow-pickle if you trust it"
        )
    archive = open_npz(path, allow_pickle=True)
    with archive:
        if "data" not in archive.files:
            raise DataError(f"{path}: no 'data' entry; is this a preprocessed 3DHP file?")
        try:
            data = archive["data"].item()
        except Exception as exc:
            raise DataError(f"{path}: 'data' cannot be read: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise DataError(f"{path}: 'data' is not a non-empty dictionary")
    out = []
    for key, value in data.items():
        if isinstance(value, dict) and "data_2d" in value:  # test layout
            out.append(
                _sequence(str(key), value, IMAGE_SIZE.get(str(key), DEFAULT_IMAGE_SIZE), path, fps)
            )
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], dict):  # train
            for cam, entry in value[0].items():
                out.append(_sequence(f"{key}/cam{cam}", entry, DEFAULT_IMAGE_SIZE, path, fps))
        else:
            raise DataError(f"{path}: entry {key!r} is neither the test nor the training layout")
    return out
