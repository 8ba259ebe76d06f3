"""2D pose detectors behind one small interface, so the lifting code never sees which.

A detector maps an RGB image ``(H, W, 3)`` uint8 to the people it finds, each a
``(K, 3)`` array of pixel ``x, y`` and a score in [0, 1] in its keypoint ``layout`` (a name
in :data:`htpose.data.keypoints.LAYOUTS`). ``single_person`` says that one call finds at
most one person (the tracker then finds the others by hiding the ones already found).

To add a detector (for example RTMPose through rtmlib), write a class with ``layout``,
``single_person``, ``detect`` and ``close`` and pass it to
:func:`htpose.video.pipeline.detect_video`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import Protocol

import numpy as np

from htpose.errors import HtposeError


class PoseDetector(Protocol):
    layout: str
    single_person: bool

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        """People in ``image`` ``(H, W, 3)`` uint8 RGB, each ``(K, 3)``: pixel x, y, score."""
        ...

    def close(self) -> None: ...


@contextlib.contextmanager
def _quiet_native_logs() -> Iterator[None]:
    """Silence what MediaPipe's C++ side prints to stderr while it loads (TFLite and absl
    notices), so our one-line messages stay the only output."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class MediaPipePose:
    """MediaPipe Pose (BlazePose, 33 landmarks), run offline from the model inside the wheel.

    Every call is a fresh single-image detection (``static_image_mode``): the tracker hands
    it a crop around the followed person, which does what MediaPipe's own tracking does but
    lets us choose *which* person. ``complexity`` 0, 1 or 2 trades speed for accuracy; a
    landmark's score is MediaPipe's visibility.
    """

    layout = "mediapipe33"
    single_person = True

    def __init__(self, complexity: int = 1, min_confidence: float = 0.5) -> None:
        if complexity not in (0, 1, 2):
            raise HtposeError(f"MediaPipe model complexity must be 0, 1 or 2, got {complexity}")
        with _quiet_native_logs():
            try:
                import mediapipe as mp
            except ImportError as exc:
                raise HtposeError(
                    "video detection needs MediaPipe: pip install 'htpose[video]'"
                ) from exc
            self._pose = mp.solutions.pose.Pose(
                static_image_mode=True,
                model_complexity=complexity,
                min_detection_confidence=min_confidence,
            )
            self._pose.process(np.zeros((64, 64, 3), np.uint8))  # loads the graph quietly

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        h, w = image.shape[:2]
        if h < 8 or w < 8:
            return []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # protobuf deprecation notices, once per call
            res = self._pose.process(np.ascontiguousarray(image))
        if not res.pose_landmarks:
            return []
        pts = np.array([(lm.x * w, lm.y * h, lm.visibility) for lm in res.pose_landmarks.landmark])
        pts[:, 2] = np.clip(np.nan_to_num(pts[:, 2]), 0.0, 1.0)
        return [pts]

    def close(self) -> None:
        self._pose.close()


DETECTORS = {"mediapipe": MediaPipePose}
