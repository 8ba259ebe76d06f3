"""From files on disk to camera-view sequences, whatever the data set.

Formats are recognised by content, not by name: a clip collection (htpose's own),
Human3.6M's VideoPose3D layout (``positions_3d``, pickled) or MPI-INF-3DHP's preprocessed
layout (``data``, pickled). Pickled files are opened only with ``allow_pickle``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence as Seq
from pathlib import Path

import numpy as np

from htpose.data.camera import Camera, load_h36m_cameras
from htpose.data.capture import capture_clip, novel_capture, virtual_capture
from htpose.data.clips import ClipCollection, read_clips
from htpose.data.h36m import read_h36m_3d, read_keypoints_2d
from htpose.data.mpi3dhp import read_3dhp
from htpose.data.sequences import Sequence
from htpose.data.temporal import MODEL_FPS, resample
from htpose.errors import DataError


def detect_format(path: str | Path) -> str:
    """``"clips"``, ``"h36m"`` or ``"3dhp"`` from the archive's entry names."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            names = {n.removesuffix(".npy") for n in zf.namelist()}
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path} is not an .npz archive (truncated or foreign file?)") from exc
    if "positions_3d" in names:
        return "h36m"
    if names == {"data"}:
        return "3dhp"
    return "clips"


def select_views(
    cameras: dict[str, list[Camera]], subjects: Seq[str], views: Seq[int] | None
) -> list[Camera]:
    """The cameras of ``subjects``, optionally only the view indices ``views``."""
    out = []
    for s in subjects:
        if s not in cameras:
            raise DataError(f"no cameras for subject {s!r} (have {', '.join(cameras)})")
        rig = cameras[s]
        for v in views if views is not None else range(len(rig)):
            if not 0 <= v < len(rig):
                raise DataError(f"subject {s} has views 0..{len(rig) - 1}, not {v}")
            out.append(rig[v])
    return out


def collection_sequences(
    collection: ClipCollection,
    cameras: dict[str, list[Camera]],
    subjects: Seq[str],
    views: Seq[int] | None = None,
    keypoints: dict[tuple[str, int], np.ndarray] | None = None,
    distortion: str = "brown_conrady",
) -> list[Sequence]:
    """Camera views of every clip.

    A clip whose name starts with a subject of the camera file (``"S9/Walking 1"``, as in
    converted Human3.6M) is seen by that subject's own cameras, the Human3.6M protocol; any
    other clip by the cameras of ``subjects``. ``keypoints`` (detections by clip and view)
    replace the projected 2D where given.
    """
    rig = select_views(cameras, subjects, views)
    own = [n for n in collection.clips if n.split("/")[0] in cameras]
    if not own:
        return virtual_capture(collection, rig, MODEL_FPS, distortion)
    out = []
    for name in own:
        subject = name.split("/")[0]
        clip = collection.clips[name]
        if collection.fps != MODEL_FPS:
            clip = resample(clip, collection.fps)
        for view in views if views is not None else range(len(cameras[subject])):
            seq = capture_clip(
                name, collection.action_of(name), clip, cameras[subject][view], distortion
            )
            det = None if keypoints is None else keypoints.get((name, view))
            if keypoints is not None and det is None:
                raise DataError(f"the 2D detections have no entry for {name!r} view {view}")
            if det is not None:
                if len(det) < len(seq):
                    raise DataError(
                        f"2D detections of {name!r} view {view} are shorter than its 3D"
                    )
                seq.keypoints_2d = det[: len(seq)]
            out.append(seq)
    rest = ClipCollection(
        {n: c for n, c in collection.clips.items() if n not in own}, collection.fps
    )
    rest.actions = collection.actions
    if rest.clips:
        out.extend(virtual_capture(rest, rig, MODEL_FPS, distortion))
    return out


def load_sequences(
    path: str | Path,
    cameras_path: str | Path,
    split: str | None = "test",
    subjects: Seq[str] = ("S9", "S11"),
    views: Seq[int] | None = None,
    fps: float | None = None,
    keypoints_path: str | Path | None = None,
    allow_pickle: bool = False,
    distortion: str = "brown_conrady",
    random_cameras: tuple[int, int] | None = None,
    tilt: float = 0.0,
) -> list[Sequence]:
    """Evaluation sequences from any supported file (see the module docstring).

    ``random_cameras`` ``(N, seed)``: the novel-camera protocol
    (:func:`~htpose.data.capture.novel_capture`) instead of the Human3.6M cameras.
    ``tilt``: degrees by which every clip of a collection is rotated about a horizontal
    axis first (:meth:`~htpose.data.clips.ClipCollection.tilted`).
    """
    fmt = detect_format(path)
    if fmt == "3dhp":
        if tilt:
            raise DataError("MPI-INF-3DHP comes with its own 2D; a tilt does not apply")
        if random_cameras is not None:
            raise DataError("MPI-INF-3DHP comes with its own 2D; random cameras do not apply")
        return read_3dhp(path, allow_pickle=allow_pickle, fps=fps)
    if fmt == "h36m":
        collection = read_h36m_3d(path, allow_pickle=allow_pickle)
    else:
        collection = read_clips(path, fps=fps)
    if split is not None and split != "all":
        collection = collection.select(split)
    if tilt:
        if keypoints_path:
            raise DataError("2D detections show the bodies as recorded; drop the tilt")
        collection = collection.tilted(tilt)
    if random_cameras is not None:
        if keypoints_path:
            raise DataError("2D detections belong to their own cameras; drop the random cameras")
        count, seed = random_cameras
        return novel_capture(collection, count, seed, distortion=distortion)
    keypoints = read_keypoints_2d(keypoints_path, allow_pickle) if keypoints_path else None
    cameras = load_h36m_cameras(cameras_path)
    return collection_sequences(collection, cameras, subjects, views, keypoints, distortion)
