"""A video file in, one person's 2D keypoints out, with each stage's time.

``detect_video`` decodes, detects and tracks frame by frame (memory does not grow with the
video's length, except for the small thumbnails kept for an overlay render) and returns a
:class:`~htpose.data.keypoints.Keypoints2D` in Human3.6M-17 order plus which frames had
the person. Frames without the person are left missing (score 0): the lifter fills them in
from the neighbouring frames and flags them in ``filled``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from htpose.data.keypoints import Keypoints2D, to_h36m
from htpose.errors import DataError
from htpose.video.decode import VideoInfo, frames
from htpose.video.detect import PoseDetector
from htpose.video.track import PersonTracker

THUMB_HEIGHT = 360  # pixels: overlay renders draw the video this tall


@dataclass
class VideoKeypoints:
    """``keypoints`` of the followed person; ``found`` ``(T,)`` which frames had them;
    ``thumbnails`` ``{frame: (h, w, 3) uint8}`` kept for rendering; ``seconds`` per stage;
    ``expected_frames`` from the container (``None`` when unknown)."""

    keypoints: Keypoints2D
    found: np.ndarray
    info: VideoInfo
    thumbnails: dict[int, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    people_seen: int = 0


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    step = max(1, int(np.ceil(frame.shape[0] / THUMB_HEIGHT)))
    return np.ascontiguousarray(frame[::step, ::step])


def detect_video(
    info: VideoInfo,
    detector: PoseDetector,
    person: str | int = "largest",
    max_people: int = 4,
    keep_every: int = 0,
    max_frames: int | None = None,
    progress: bool = True,
) -> VideoKeypoints:
    """Run ``detector`` on every frame of the video ``info`` (from
    :func:`~htpose.video.decode.probe`) and follow one ``person`` (see
    :mod:`htpose.video.track`). ``keep_every``: keep a thumbnail of every that many frames
    (0: none); ``max_frames``: stop after that many frames."""
    from tqdm import tqdm

    tracker = PersonTracker(detector, person, max_people)
    people: list[np.ndarray | None] = []
    thumbs: dict[int, np.ndarray] = {}
    seconds = {"decode": 0.0, "detect": 0.0}
    stream = frames(info)
    bar = tqdm(total=info.expected_frames, unit="frame", desc="detect", disable=not progress)
    with bar:
        while max_frames is None or len(people) < max_frames:
            tick = time.perf_counter()
            frame = next(stream, None)
            seconds["decode"] += time.perf_counter() - tick
            if frame is None:
                break
            tick = time.perf_counter()
            people.append(tracker(frame))
            seconds["detect"] += time.perf_counter() - tick
            if keep_every and (len(people) - 1) % keep_every == 0:
                thumbs[len(people) - 1] = _thumbnail(frame)
            bar.update()
    stream.close()
    if not people:
        raise DataError(f"{info.path}: the video has no frames that could be decoded")
    found = np.array([p is not None for p in people])
    if not found.any():
        raise DataError(f"{info.path}: no person was found in any of its {len(people)} frames")
    if isinstance(person, int) and tracker.most_seen <= person:
        raise DataError(
            f"{info.path}: --person {person} needs {person + 1} people, but at most "
            f"{tracker.most_seen} were seen at once"
        )
    size = next(p for p in people if p is not None).shape[0]
    points = np.zeros((len(people), size, 3))
    for i, p in enumerate(people):
        if p is not None:
            points[i] = p
    xy, sc = to_h36m(points, detector.layout)
    kp = Keypoints2D(xy, sc, info.fps, info.width, info.height, f"video:{detector.layout}")
    return VideoKeypoints(kp, found, info, thumbs, seconds, tracker.most_seen)
