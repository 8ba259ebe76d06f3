"""Users' 2D keypoints: the formats detectors write, mapped to the Human3.6M-17 skeleton.

Supported inputs (``read_keypoints`` picks by content, ``fmt`` forces one):

- ``coco``: COCO keypoint *results* JSON (a list of ``{"image_id", "keypoints": [x, y, score]
  x 17, "score"}``; MMPose, RTMPose, Detectron2, ...), a COCO *dataset* JSON (``images`` with
  ``width``/``height`` + ``annotations``), or MMPose's per-frame ``[{"frame_id", "instances":
  [{"keypoints", "keypoint_scores"}]}]``, bare or wrapped as ``{"meta_info",
  "instance_info"}`` (what MMPose's top-down demo writes with ``--save-predictions``).
  Frames are the sorted ``image_id``/``frame_id`` values; integer ids with gaps leave the
  person missing in the frames between.
- ``openpose``: a folder of per-frame ``*_keypoints.json`` (or one such file) with
  ``people[i]["pose_keypoints_2d"]``, BODY_25 (25 points) or COCO-18 (18 points).
- ``mediapipe``: Pose landmarks, 33 per frame, ``x, y`` in [0, 1] of the image and a
  ``visibility``; JSON (a list of frames, each a list of landmark objects or
  ``{"landmarks": [...]}``) or CSV (one row per frame: optional ``frame`` column, then
  ``x, y, z, visibility`` or ``x, y, visibility`` per landmark; header optional).
- ``yolo``: Ultralytics YOLO pose predictions saved as text (``save_txt=True``): a folder of
  per-frame ``.txt`` files (or one file), one line per person: ``class cx cy w h`` then 17
  COCO keypoints as ``x y`` or ``x y conf``, all fractions of the image, optionally the box
  confidence last (a YOLO *dataset*'s 0/1/2 visibility flags read as 0 = missing, else
  seen). Files named ``<stem>_<n>.txt`` (how Ultralytics names a video's frames)
  are frame ``n``, and frames without a file (nobody detected) are missing; other names
  are frames in natural order. A keypoint at ``(0, 0)`` is missing.
- ``numpy``: ``.npy`` ``(T, 17, 2|3)`` already in Human3.6M-17 order (third channel: score), or
  ``.npz`` with ``keypoints`` (+ optional ``scores``, ``fps``, ``width``, ``height``).

One person is lifted: where a frame has several, the one nearest the previous choice (the
most confident one at the start) is taken, so a track does not jump between people.

Mappings (the COCO -> H36M convention of MMPose and MotionBERT): pelvis = mid-hips, thorax =
mid-shoulders (OpenPose: its Neck), spine = midpoint of pelvis and thorax, neck/nose = nose,
head = mid-eyes; limbs one to one, the person's left to H36M's left. A synthesised joint's
score is the smallest of the scores it was made from.
"""

from __future__ import annotations

import csv
import io
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from htpose.errors import DataError
from htpose.io import numeric_array, open_npz, read_json, read_npz_array, read_text
from htpose.skeleton import JOINT_NAMES, NUM_JOINTS

FORMATS = ("coco", "openpose", "mediapipe", "yolo", "numpy")

# Each H36M joint as the mean of source keypoints (per format), "spine" handled apart.
_COCO17 = {
    "pelvis": (11, 12), "r_hip": (12,), "r_knee": (14,), "r_ankle": (16,),
    "l_hip": (11,), "l_knee": (13,), "l_ankle": (15,), "thorax": (5, 6),
    "neck_nose": (0,), "head": (1, 2), "l_shoulder": (5,), "l_elbow": (7,),
    "l_wrist": (9,), "r_shoulder": (6,), "r_elbow": (8,), "r_wrist": (10,),
}  # fmt: skip
_BODY25 = {
    "pelvis": (8,), "r_hip": (9,), "r_knee": (10,), "r_ankle": (11,),
    "l_hip": (12,), "l_knee": (13,), "l_ankle": (14,), "thorax": (1,),
    "neck_nose": (0,), "head": (15, 16), "l_shoulder": (5,), "l_elbow": (6,),
    "l_wrist": (7,), "r_shoulder": (2,), "r_elbow": (3,), "r_wrist": (4,),
}  # fmt: skip
_COCO18 = {
    "pelvis": (8, 11), "r_hip": (8,), "r_knee": (9,), "r_ankle": (10,),
    "l_hip": (11,), "l_knee": (12,), "l_ankle": (13,), "thorax": (1,),
    "neck_nose": (0,), "head": (14, 15), "l_shoulder": (5,), "l_elbow": (6,),
    "l_wrist": (7,), "r_shoulder": (2,), "r_elbow": (3,), "r_wrist": (4,),
}  # fmt: skip
_MEDIAPIPE33 = {
    "pelvis": (23, 24), "r_hip": (24,), "r_knee": (26,), "r_ankle": (28,),
    "l_hip": (23,), "l_knee": (25,), "l_ankle": (27,), "thorax": (11, 12),
    "neck_nose": (0,), "head": (2, 5), "l_shoulder": (11,), "l_elbow": (13,),
    "l_wrist": (15,), "r_shoulder": (12,), "r_elbow": (14,), "r_wrist": (16,),
}  # fmt: skip
# BODY_25B (OpenPose's newer model, Pose2Sim's default), Halpe-26 (AlphaPose, RTMPose
# body8-halpe26) and COCO-WholeBody-133 begin with the 17 COCO points in COCO order.
_H36M17 = {name: (j,) for j, name in enumerate(JOINT_NAMES) if name != "spine"}
LAYOUTS = {
    "coco17": _COCO17, "body25": _BODY25, "body25b": _COCO17, "coco18": _COCO18,
    "halpe26": _COCO17, "wholebody133": _COCO17, "mediapipe33": _MEDIAPIPE33, "h36m17": _H36M17,
}  # fmt: skip
LAYOUT_SIZES = {
    "coco17": 17, "body25": 25, "body25b": 25, "coco18": 18, "halpe26": 26,
    "wholebody133": 133, "mediapipe33": 33, "h36m17": 17,
}  # fmt: skip
# Layouts a point count may mean, most likely first.
LAYOUTS_BY_SIZE = {
    17: ("coco17",), 18: ("coco18",), 25: ("body25", "body25b"), 26: ("halpe26",),
    33: ("mediapipe33",), 133: ("wholebody133",),
}  # fmt: skip
# Above this :func:`implausibility` the 2D is reported as unlike one human body.
IMPLAUSIBLE = 0.5
# Beyond this many pixels a coordinate is no image position at all (and sums of such
# values overflow); normalised and pixel inputs both sit far below it.
MAX_COORDINATE = 1e9
# Limb bones (child, parent) in H36M order, left then right, for plausibility checks.
_LIMBS = ((12, 11), (13, 12), (5, 4), (6, 5), (15, 14), (16, 15), (2, 1), (3, 2))


@dataclass
class Keypoints2D:
    """One person's 2D track in Human3.6M-17 order.

    ``pixels`` ``(T, 17, 2)`` (NaN where the joint is missing), ``scores`` ``(T, 17)`` in [0, 1]
    (0 where missing); ``fps``, ``width``, ``height`` when the file says; ``source`` the format
    and layout read; ``normalized``: ``pixels`` are fractions of the image (MediaPipe, YOLO),
    to be multiplied by the image size.
    """

    pixels: np.ndarray
    scores: np.ndarray
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    source: str = ""
    normalized: bool = False

    def __len__(self) -> int:
        return len(self.pixels)


def to_h36m(points: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Map ``(T, K, 3)`` ``(x, y, score)`` of a named layout to H36M-17 pixels and scores.

    Missing source points must carry score 0 (their coordinates are ignored).
    """
    table = LAYOUTS[layout]
    t = len(points)
    xy = np.full((t, NUM_JOINTS, 2), np.nan)
    sc = np.zeros((t, NUM_JOINTS))
    src_xy, src_sc = points[..., :2], points[..., 2]
    for j, name in enumerate(JOINT_NAMES):
        if name == "spine":
            continue
        idx = list(table[name])
        xy[:, j] = src_xy[:, idx].mean(axis=1)
        sc[:, j] = src_sc[:, idx].min(axis=1)
    spine = JOINT_NAMES.index("spine")
    pelvis, thorax = JOINT_NAMES.index("pelvis"), JOINT_NAMES.index("thorax")
    if layout == "h36m17":
        xy[:, spine], sc[:, spine] = src_xy[:, spine], src_sc[:, spine]
    else:
        xy[:, spine] = (xy[:, pelvis] + xy[:, thorax]) / 2
        sc[:, spine] = np.minimum(sc[:, pelvis], sc[:, thorax])
    xy[sc <= 0] = np.nan
    return xy, sc


def implausibility(xy: np.ndarray, sc: np.ndarray) -> float:
    """How unlike one human body a 2D track in H36M-17 order ``(T, 17, 2)`` is: the median,
    over limb bones, of the variation of their length over time (relative to the track's
    typical torso length) plus their left/right mismatch. About 0.1-0.3 for real detections
    of a person; a wrong layout (zig-zag limbs) scores well above 0.5."""
    torso = np.linalg.norm(xy[:, 8] - xy[:, 0], axis=-1)
    ok = (sc[:, 8] > 0) & (sc[:, 0] > 0) & np.isfinite(torso)
    # One frame is enough: its lengths then vary by 0 and only left/right is judged.
    if ok.sum() < 1 or not np.nanmedian(torso[ok]) > 0:
        return math.inf
    unit = float(np.nanmedian(torso[ok]))
    lengths = []
    for child, parent in _LIMBS:
        seen = (sc[:, child] > 0) & (sc[:, parent] > 0)
        if seen.sum() < 1:
            lengths.append(np.full(len(xy), np.nan))
            continue
        length = np.linalg.norm(xy[:, child] - xy[:, parent], axis=-1) / unit
        lengths.append(np.where(seen, length, np.nan))
    lengths = np.array(lengths)  # (8, T)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        variation = np.nanstd(lengths, axis=1) / np.nanmean(lengths, axis=1)
        left, right = np.nanmedian(lengths[:4], axis=1), np.nanmedian(lengths[4:], axis=1)
        mismatch = np.abs(left - right) / (left + right)
        score = float(np.nanmedian(variation) + np.nanmedian(mismatch))
    return score if math.isfinite(score) else math.inf


def choose_layout(points: np.ndarray, forced: str | None, where: str) -> str:
    """The layout of ``(T, K, 3)`` source points: ``forced`` if given (checked against K),
    the only one K can mean, or, for 25 points (BODY_25 or BODY_25B), the one whose skeleton
    is clearly more consistent over time; otherwise an error naming ``--layout``."""
    size = points.shape[1]
    if forced is not None:
        if forced not in LAYOUTS:
            raise DataError(f"unknown layout {forced!r}; choose from {', '.join(LAYOUTS)}")
        if LAYOUT_SIZES[forced] != size:
            raise DataError(
                f"{where}: {size} points per person, but layout {forced} has {LAYOUT_SIZES[forced]}"
            )
        return forced
    options = LAYOUTS_BY_SIZE.get(size)
    if not options:
        known = ", ".join(str(k) for k in sorted(LAYOUTS_BY_SIZE))
        raise DataError(f"{where}: {size} points per person is no layout htpose knows ({known})")
    if len(options) == 1:
        return options[0]
    scores = {name: implausibility(*to_h36m(points, name)) for name in options}
    ranked = sorted(scores, key=scores.get)
    best, second = ranked[0], ranked[1]
    if scores[best] < 0.7 * scores[second]:
        return best
    raise DataError(
        f"{where}: {size} points could be {' or '.join(options)} and the data does not tell "
        f"(consistency {', '.join(f'{k} {v:.2f}' for k, v in scores.items())}); "
        "pass --layout"
    )


def _track(frames: list[list[np.ndarray]], size: int) -> np.ndarray:
    """One ``(K, 3)`` person per frame out of each frame's candidates, as ``(T, K, 3)``.

    Start from the most confident person; then keep the candidate whose confident points are
    nearest (mean distance) to the last chosen pose. Frames without anyone get score 0.
    """
    out = np.zeros((len(frames), size, 3))
    last = None
    for i, people in enumerate(frames):
        if not people:
            continue
        if last is None:
            best = max(people, key=lambda p: float(np.nansum(p[:, 2])))
        else:

            def distance(p: np.ndarray, ref: np.ndarray = last) -> float:
                both = (p[:, 2] > 0) & (ref[:, 2] > 0)
                if not both.any():
                    return math.inf
                return float(np.linalg.norm(p[both, :2] - ref[both, :2], axis=1).mean())

            best = min(people, key=distance)
        out[i] = best
        last = best
    return out


def _points(values, size: int, channels: int, where: str) -> np.ndarray:
    arr = numeric_array(values, where)
    if arr.size != size * channels:
        raise DataError(f"{where} has {arr.size} numbers; expected {size} x {channels}")
    arr = arr.reshape(size, channels)
    if channels == 2:
        arr = np.concatenate([arr, np.ones((size, 1))], axis=1)
    arr = arr[:, :3].copy()
    # Finite but beyond any image (non-finite points count as missing, below).
    xy = arr[:, :2]
    huge = np.isfinite(xy) & (np.abs(np.where(np.isfinite(xy), xy, 0.0)) > MAX_COORDINATE)
    if huge.any():
        k = int(np.argwhere(huge)[0, 0])
        raise DataError(
            f"{where}: point {k} lies at {arr[k, :2].tolist()}: not an image position "
            f"(beyond {MAX_COORDINATE:.0e} pixels)"
        )
    bad = ~np.isfinite(arr).all(axis=1)
    arr[bad] = 0.0
    arr[:, 2] = np.clip(arr[:, 2], 0.0, 1.0)
    return arr


def _frames_from_ids(ids: list, people: list[np.ndarray]) -> tuple[list, list[list[np.ndarray]]]:
    """Group detections by frame id; integer ids with gaps get empty frames in between."""
    by_id: dict = {}
    for fid, person in zip(ids, people):
        by_id.setdefault(fid, []).append(person)
    keys = list(by_id)
    if all(isinstance(k, int) for k in keys):
        lo, hi = min(keys), max(keys)
        if hi - lo + 1 > 10 * len(keys) + 1000:
            raise DataError(f"frame ids span {lo}..{hi} for only {len(keys)} frames")
        order = list(range(lo, hi + 1))
    else:
        order = sorted(keys, key=natural_key)
    return order, [by_id.get(k, []) for k in order]


def natural_key(value: int | str) -> tuple:
    """Sort key that orders numbers inside names by value: ``"2.jpg"`` before ``"10.jpg"``
    (AlphaPose names frames by their image file), integers by value."""
    if isinstance(value, int):
        return ((1, value, ""),)
    parts = re.split(r"(\d+)", value)
    return tuple((1, int(p), "") if p.isdigit() else (0, 0, p) for p in parts if p)


def _frame_id(value, default: int, where: str) -> int | str:
    """A frame or image id: an integer or a string (booleans and other types refused)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DataError(f"{where}: a frame id of type {type(value).__name__}; expected int or str")
    return value


def _coco_image_size(images, path: Path) -> tuple[int | None, int | None]:
    """The one image size of a COCO dataset's ``images`` (None where absent or mixed)."""
    if not isinstance(images, list):
        raise DataError(f"{path}: 'images' must be a list of image records")
    sizes = set()
    for i, im in enumerate(images):
        if not isinstance(im, dict):
            raise DataError(f"{path}: images[{i}] is not an object")
        w, h = im.get("width"), im.get("height")
        if w is None and h is None:
            continue
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
            raise DataError(f"{path}: images[{i}] width/height must be positive integers")
        sizes.add((w, h))
    return next(iter(sizes)) if len(sizes) == 1 else (None, None)


def _mmpose_people(entry: dict, i: int, path: Path) -> tuple[int | str, list[np.ndarray]]:
    """One MMPose per-frame record: its frame id and its people as ``(17, 3)`` arrays."""
    fid = _frame_id(entry.get("frame_id"), i, f"{path}: entry {i}")
    instances = entry["instances"]
    if instances is None:
        instances = []
    if not isinstance(instances, list):
        raise DataError(f"{path}: frame {fid} 'instances' is not a list")
    people = []
    for inst in instances:
        if not isinstance(inst, dict):
            raise DataError(f"{path}: frame {fid} has an instance that is not an object")
        kp = numeric_array(inst.get("keypoints"), f"{path}: frame {fid} keypoints")
        sc = numeric_array(
            inst.get("keypoint_scores", np.ones(len(kp) if kp.ndim else 0)),
            f"{path}: frame {fid} scores",
        )
        if kp.ndim != 2 or kp.shape[1] != 2 or kp.shape[0] not in LAYOUTS_BY_SIZE:
            raise DataError(f"{path}: frame {fid} keypoints are not (K, 2) of a known layout")
        if sc.shape != (kp.shape[0],):
            raise DataError(f"{path}: frame {fid} has {sc.shape} scores for {len(kp)} points")
        people.append(_points(np.c_[kp, sc], len(kp), 3, f"{path}: frame {fid}"))
    return fid, people


def read_coco(path: Path, layout: str | None = None) -> Keypoints2D:
    doc = read_json(path, "COCO keypoints file")
    width = height = None
    dataset = isinstance(doc, dict) and "annotations" in doc
    if dataset:
        width, height = _coco_image_size(doc.get("images") or [], path)
        doc = doc["annotations"]
    elif isinstance(doc, dict) and "instance_info" in doc:  # MMPose demo --save-predictions
        doc = doc["instance_info"]
    if not isinstance(doc, list) or not doc:
        raise DataError(f"{path}: expected a non-empty list of COCO keypoint results")
    ids, people = [], []
    for i, entry in enumerate(doc):
        if not isinstance(entry, dict):
            raise DataError(f"{path}: entry {i} is not an object")
        if "instances" in entry:  # MMPose's per-frame predictions
            fid, found = _mmpose_people(entry, i, path)
            people.extend(found)
            ids.extend([fid] * len(found))
            continue
        if "keypoints" not in entry:
            raise DataError(f"{path}: entry {i} has no 'keypoints'; is this a COCO results file?")
        fid = _frame_id(entry.get("image_id"), i, f"{path}: entry {i}")
        raw = entry["keypoints"]
        n = len(raw) // 3 if isinstance(raw, list) else 0
        if n not in (17, 25, 26, 133) or len(raw) != 3 * n:
            count = len(raw) if isinstance(raw, list) else type(raw).__name__
            raise DataError(
                f"{path}: entry {i} keypoints has {count} numbers; expected 17 x 3 (COCO-17), "
                "or 25, 26 or 133 x 3 (BODY_25B, Halpe-26, COCO-WholeBody)"
            )
        pts = _points(raw, n, 3, f"{path}: entry {i} keypoints")
        if dataset:
            pts[:, 2] = pts[:, 2] > 0  # annotations carry visibility flags 0/1/2, not scores
        people.append(pts)
        ids.append(fid)
    if not people:
        raise DataError(f"{path}: no person in any frame")
    if len({type(k) for k in ids}) > 1:
        raise DataError(f"{path}: frame ids mix numbers and names; cannot order the frames")
    sizes = {len(p) for p in people}
    if len(sizes) != 1:
        raise DataError(f"{path}: people have different point counts {sorted(sizes)}")
    _, frames = _frames_from_ids(ids, people)
    track = _track(frames, sizes.pop())
    chosen = choose_layout(track, layout, str(path))
    xy, sc = to_h36m(track, chosen)
    return Keypoints2D(xy, sc, None, width, height, chosen)


def read_openpose(path: Path, layout: str | None = None) -> Keypoints2D:
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise DataError(f"{path}: no OpenPose .json files in this folder")
    frames, size = [], None
    for f in files:
        doc = read_json(f, "OpenPose file")
        if not isinstance(doc, dict) or not isinstance(doc.get("people"), list):
            raise DataError(f"{f}: not an OpenPose file (no 'people' list)")
        people = []
        for person in doc["people"]:
            raw = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
            if raw is None:
                raise DataError(f"{f}: a person without 'pose_keypoints_2d'")
            n = len(raw) // 3 if isinstance(raw, list) else 0
            if n not in (25, 18) or len(raw) != 3 * n:
                raise DataError(
                    f"{f}: pose_keypoints_2d has {len(raw) if isinstance(raw, list) else '?'} "
                    "numbers; expected 75 (BODY_25 or BODY_25B) or 54 (COCO-18)"
                )
            if size is not None and n != size:
                raise DataError(f"{f}: {n} keypoints, the other files have {size}")
            size = n
            people.append(_points(raw, n, 3, f"{f}: pose_keypoints_2d"))
        frames.append(people)
    if size is None:
        raise DataError(f"{path}: no person in any frame")
    track = _track(frames, size)
    chosen = choose_layout(track, layout, str(path))
    xy, sc = to_h36m(track, chosen)
    return Keypoints2D(xy, sc, None, None, None, chosen)


def _mediapipe_landmarks(frame, where: str) -> np.ndarray:
    if isinstance(frame, dict):
        frame = frame.get("landmarks", frame.get("pose_landmarks"))
    if not isinstance(frame, list) or len(frame) != 33:
        raise DataError(f"{where}: expected 33 landmarks")
    rows = []
    for lm in frame:
        if isinstance(lm, dict):
            rows.append([lm.get("x"), lm.get("y"), lm.get("visibility", 1.0)])
        elif isinstance(lm, list) and len(lm) >= 2:
            rows.append([lm[0], lm[1], lm[3] if len(lm) >= 4 else 1.0])
        else:
            raise DataError(f"{where}: a landmark is neither an object nor a list")
    try:
        return _points([[math.nan if v is None else v for v in r] for r in rows], 33, 3, where)
    except TypeError as exc:
        raise DataError(f"{where}: landmark values are not numbers") from exc


def read_mediapipe(path: Path, layout: str | None = None) -> Keypoints2D:
    if layout not in (None, "mediapipe33"):
        raise DataError(f"MediaPipe landmarks are the mediapipe33 layout, not {layout}")
    if path.suffix.lower() == ".csv":
        pts = _mediapipe_csv(path)
    else:
        doc = read_json(path, "MediaPipe landmarks file")
        if isinstance(doc, dict):
            doc = doc.get("frames", doc.get("landmarks"))
        if not isinstance(doc, list) or not doc:
            raise DataError(f"{path}: expected a list of frames of 33 landmarks")
        pts = np.stack([_mediapipe_landmarks(f, f"{path}: frame {i}") for i, f in enumerate(doc)])
    xy, sc = to_h36m(pts, "mediapipe33")
    # Landmarks are fractions of the image: flagged by width/height of None.
    return Keypoints2D(xy, sc, None, None, None, "mediapipe33", normalized=True)


def _mediapipe_csv(path: Path) -> np.ndarray:
    text = read_text(path, "MediaPipe CSV")
    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV file: {exc}") from exc
    if rows and not _is_number(rows[0][-1]):
        rows = rows[1:]  # header
    if not rows:
        raise DataError(f"{path}: no landmark rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise DataError(f"{path}: rows have different numbers of columns {sorted(widths)}")
    width = widths.pop()
    layouts = {132: 4, 133: 4, 99: 3, 100: 3}  # (x, y, z, vis) or (x, y, vis), +frame column
    if width not in layouts:
        raise DataError(
            f"{path}: {width} columns; expected 33 x (x, y, z, visibility) or 33 x (x, y, "
            "visibility), optionally after a frame column"
        )
    per = layouts[width]
    try:
        values = np.array([[float(c) for c in r[width - 33 * per :]] for r in rows])
    except ValueError as exc:
        raise DataError(f"{path}: a landmark value is not a number: {exc}") from exc
    values = values.reshape(len(rows), 33, per)
    pts = np.concatenate([values[..., :2], values[..., per - 1 : per]], axis=-1)
    return np.stack([_points(p, 33, 3, f"{path}: row {i}") for i, p in enumerate(pts)])


# Numbers per YOLO pose line: class + box (5), 17 keypoints of (x, y, conf) or (x, y), and
# optionally the box confidence; value: values per keypoint.
_YOLO_LINE = {56: 3, 57: 3, 39: 2, 40: 2}


def _yolo_frame(path: Path) -> list[np.ndarray]:
    """The people ``(17, 3)`` of one YOLO pose label file (fractions of the image)."""
    people = []
    for n, line in enumerate(read_text(path, "YOLO label file").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in _YOLO_LINE:
            raise DataError(
                f"{path}: line {n} has {len(fields)} numbers; a YOLO pose line has class, box "
                "and 17 keypoints (56 or 39, +1 with the box confidence)"
            )
        try:
            values = [float(v) for v in fields]
        except ValueError as exc:
            raise DataError(f"{path}: line {n}: {exc}") from exc
        per = _YOLO_LINE[len(fields)]
        person = _points(values[5 : 5 + 17 * per], 17, per, f"{path}: line {n}")
        person[(person[:, 0] == 0) & (person[:, 1] == 0), 2] = 0.0  # YOLO's "not found"
        people.append(person)
    return people


def _yolo_frame_ids(files: list[Path]) -> list[int | str]:
    """``<stem>_<n>`` names of one stem are frame numbers; anything else, the names."""
    found = [re.fullmatch(r"(.*)_(\d+)", f.stem) for f in files]
    if all(found) and len({m.group(1) for m in found}) == 1:
        return [int(m.group(2)) for m in found]
    return [f.stem for f in files]


def read_yolo(path: Path, layout: str | None = None) -> Keypoints2D:
    if layout not in (None, "coco17"):
        raise DataError(f"YOLO pose keypoints are the coco17 layout, not {layout}")
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise DataError(f"{path}: no YOLO .txt label files in this folder")
    ids, people = [], []
    for f, fid in zip(files, _yolo_frame_ids(files)):
        found = _yolo_frame(f)
        ids += [fid] * max(len(found), 1)
        people += found or [None]
    order, frames = _frames_from_ids(ids, people)
    frames = [[p for p in frame if p is not None] for frame in frames]
    if not any(frames):
        raise DataError(f"{path}: no person in any frame")
    xy, sc = to_h36m(_track(frames, 17), "coco17")
    return Keypoints2D(xy, sc, None, None, None, "coco17", normalized=True)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_numpy(path: Path, layout: str | None = None) -> Keypoints2D:
    fps = width = height = None
    if path.suffix.lower() == ".npz":
        with open_npz(path) as archive:
            if "keypoints" not in archive.files:
                raise DataError(f"{path}: no 'keypoints' array (have {', '.join(archive.files)})")
            arr = numeric_array(read_npz_array(archive, "keypoints", path), f"{path}: keypoints")
            scores = None
            if "scores" in archive.files:
                scores = numeric_array(read_npz_array(archive, "scores", path), f"{path}: scores")
            extra = {}
            for key in ("fps", "width", "height"):
                if key in archive.files:
                    value = numeric_array(read_npz_array(archive, key, path), f"{path}: {key}")
                    number = float(value.reshape(-1)[0]) if value.size == 1 else math.nan
                    if not (math.isfinite(number) and 0 < number <= 1e9):
                        raise DataError(f"{path}: {key!r} must be one positive number")
                    extra[key] = number
        fps = extra.get("fps")
        width = int(extra["width"]) if "width" in extra else None
        height = int(extra["height"]) if "height" in extra else None
    else:
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise DataError(f"{path} is not a readable .npy array: {exc}") from exc
        arr = numeric_array(arr, str(path))
        scores = None
    points = layout and LAYOUT_SIZES.get(layout)
    if points is None and layout is not None:
        raise DataError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    points = points or NUM_JOINTS
    if arr.ndim != 3 or arr.shape[1] != points or arr.shape[2] not in (2, 3):
        raise DataError(
            f"{path}: keypoints have shape {arr.shape}; expected (frames, {points}, 2) or "
            f"(frames, {points}, 3) in {layout or 'Human3.6M-17'} order"
        )
    if arr.shape[2] == 3:
        scores = arr[..., 2] if scores is None else scores
        arr = arr[..., :2]
    if scores is None:
        scores = np.ones(arr.shape[:2])
    if scores.shape != arr.shape[:2]:
        raise DataError(f"{path}: scores have shape {scores.shape}; expected {arr.shape[:2]}")
    scores = np.where(np.isfinite(scores), np.clip(scores, 0, 1), 0.0)
    missing = ~np.isfinite(arr).all(axis=-1)
    scores[missing] = 0.0
    xy = arr.copy()
    xy[scores <= 0] = np.nan
    if layout not in (None, "h36m17"):
        pts = np.concatenate([np.nan_to_num(xy), scores[..., None]], axis=-1)
        xy, scores = to_h36m(pts, layout)
    return Keypoints2D(xy, scores, fps, width, height, layout or "h36m17")


def detect_keypoint_format(path: Path) -> str:
    """Guess the format of a keypoints file or folder from its name and content."""
    if path.is_dir():
        has_txt = next(path.glob("*.txt"), None) is not None
        return "yolo" if has_txt and next(path.glob("*.json"), None) is None else "openpose"
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        return "numpy"
    if suffix == ".csv":
        return "mediapipe"
    if suffix == ".txt":
        return "yolo"
    if suffix != ".json":
        raise DataError(
            f"{path}: unknown keypoint format {suffix or '(no extension)'!r}; use a COCO, "
            "OpenPose or MediaPipe .json, a MediaPipe .csv, YOLO .txt labels, or a .npy/.npz"
        )
    doc = read_json(path, "keypoints file")
    if isinstance(doc, dict) and "people" in doc:
        return "openpose"
    if isinstance(doc, dict) and ("annotations" in doc or "instance_info" in doc):
        return "coco"
    first = doc[0] if isinstance(doc, list) and doc else None
    if isinstance(first, dict) and ("keypoints" in first or "instances" in first):
        return "coco"
    if (
        isinstance(first, list)
        or isinstance(first, dict)
        and ("landmarks" in first or "pose_landmarks" in first)
    ):
        return "mediapipe"
    if isinstance(doc, dict) and ("frames" in doc or "landmarks" in doc):
        return "mediapipe"
    raise DataError(
        f"{path}: JSON of an unknown schema; expected COCO keypoint results, an OpenPose "
        "file or MediaPipe landmarks"
    )


def read_keypoints(
    path: str | Path, fmt: str | None = None, layout: str | None = None
) -> Keypoints2D:
    """Read one person's 2D track from any supported file (see the module docstring).

    ``layout`` names the keypoint layout (:data:`LAYOUTS`) where the file does not say or a
    point count is ambiguous; without it a 25-point file is told apart (BODY_25 or BODY_25B)
    by which reading gives the more consistent skeleton over time (:func:`choose_layout`).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"keypoints not found: {path}")
    fmt = fmt or detect_keypoint_format(path)
    readers = {
        "coco": read_coco,
        "openpose": read_openpose,
        "mediapipe": read_mediapipe,
        "yolo": read_yolo,
        "numpy": read_numpy,
    }
    if fmt not in readers:
        raise DataError(f"unknown keypoint format {fmt!r}; choose from {', '.join(FORMATS)}")
    if layout is not None and layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    kp = readers[fmt](path, layout)
    if len(kp) == 0:
        raise DataError(f"{path}: no frames")
    return kp


def fill_missing(
    pixels: np.ndarray, scores: np.ndarray, threshold: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate joints below ``threshold`` linearly over time (held at the ends).

    ``pixels`` ``(T, 17, 2)``, ``scores`` ``(T, 17)``; returns the filled pixels and the
    ``(T, 17)`` mask of filled entries. A joint never scored above ``threshold`` keeps the
    detector's own low-score guesses where it gave some (MediaPipe places every landmark,
    occluded or not), still flagged as filled; a joint with no position at all is an error.
    """
    good = (scores >= threshold) & np.isfinite(pixels).all(axis=-1)
    if not good.any():
        raise DataError(
            f"no keypoint has a score of at least {threshold} in any frame (all missing?)"
        )
    out = pixels.copy()
    t = np.arange(len(pixels))
    for j in range(pixels.shape[1]):
        ok = good[:, j]
        if not ok.any():
            ok = (scores[:, j] > 0) & np.isfinite(pixels[:, j]).all(axis=-1)
            if not ok.any():
                raise DataError(
                    f"joint {JOINT_NAMES[j]!r} is missing in every frame; it cannot be filled in"
                )
        if ok.all():
            continue
        for c in range(2):
            out[:, j, c] = np.interp(t, t[ok], pixels[ok, j, c])
    return out, ~good
