"""Pick one person and follow them through a video.

At the start (and whenever the person is lost) every person in the full frame is found:
a single-person detector is run again with the people already found painted over, up to
``max_people``. The person is chosen by ``rule``: ``largest`` (biggest box of confident
keypoints), ``center`` (box centre nearest the image centre) or an integer ``N`` (the N-th
person from the left, 0-based). Each later frame is detected in a crop around the person's
last box (twice its size), so other people rarely interfere; a detection whose centre jumps
further than the person's size from the last centre, or whose size changes by more than
half, is refused, and the full frame searched for the person nearest the last position.
Frames where the person is not found are ``None``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from htpose.video.detect import PoseDetector

CONFIDENT = 0.5  # keypoints scored at least this define a person's box
CROP_SCALE = 2.0
SIZE_CHANGE = 1.5  # most a person's box may grow or shrink between sightings


def box(person: np.ndarray) -> np.ndarray | None:
    """``(x0, y0, x1, y1)`` of the confident keypoints of ``(K, 3)``, or None if under 4."""
    ok = (person[:, 2] >= CONFIDENT) & np.isfinite(person[:, :2]).all(axis=1)
    if ok.sum() < 4:
        return None
    xy = person[ok, :2]
    return np.array([*xy.min(axis=0), *xy.max(axis=0)])


def _size(b: np.ndarray) -> float:
    return float(max(b[2] - b[0], b[3] - b[1], 1.0))


def _centre(b: np.ndarray) -> np.ndarray:
    return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])


def _people_one_by_one(
    detector: PoseDetector, image: np.ndarray, most: int
) -> Iterator[list[np.ndarray]]:
    """Each detector call's people (with a box), hiding those found before the next call
    (a single-person detector then finds the next person); stops when a call finds none."""
    if not detector.single_person:
        yield [p for p in detector.detect(image) if box(p) is not None][:most]
        return
    work = image
    fill = image.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    for _ in range(most):
        people = [p for p in detector.detect(work) if box(p) is not None][:1]
        if not people:
            return
        yield people
        b = box(people[0])
        pad = 0.15 * _size(b)
        h, w = image.shape[:2]
        x0, y0 = int(max(0, b[0] - pad)), int(max(0, b[1] - pad))
        x1, y1 = int(min(w, b[2] + pad)), int(min(h, b[3] + pad))
        if work is image:
            work = image.copy()
        work[y0:y1, x0:x1] = fill


def find_people(detector: PoseDetector, image: np.ndarray, most: int) -> list[np.ndarray]:
    """Everyone ``detector`` finds in ``image`` (at most ``most``), each ``(K, 3)``."""
    return [p for people in _people_one_by_one(detector, image, most) for p in people][:most]


def choose(people: list[np.ndarray], rule: str | int, width: int, height: int) -> int | None:
    """Index of the person ``rule`` picks among ``people`` (None if there is no such one)."""
    boxes = [box(p) for p in people]
    if not people:
        return None
    if rule == "largest":
        return int(np.argmax([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]))
    if rule == "center":
        centre = np.array([width / 2, height / 2])
        return int(np.argmin([np.linalg.norm(_centre(b) - centre) for b in boxes]))
    order = np.argsort([_centre(b)[0] for b in boxes])
    return int(order[rule]) if int(rule) < len(people) else None


class PersonTracker:
    """Call with each frame in order; returns the followed person's ``(K, 3)`` or None."""

    def __init__(self, detector: PoseDetector, rule: str | int = "largest", max_people: int = 4):
        self.detector = detector
        self.rule = rule
        self.max_people = max(1, max_people, int(rule) + 1 if isinstance(rule, int) else 1)
        self.last: np.ndarray | None = None  # the person's last box
        self.missing = 0
        self.most_seen = 0

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        h, w = frame.shape[:2]
        if self.last is None:
            people = find_people(self.detector, frame, self.max_people)
            self.most_seen = max(self.most_seen, len(people))
            pick = choose(people, self.rule, w, h)
            return self._accept(people[pick]) if pick is not None else None
        person = self._in_crop(frame)
        if person is None:
            person = self._nearest(find_people(self.detector, frame, self.max_people))
        if person is None:
            self.missing += 1
            return None
        return self._accept(person)

    def _accept(self, person: np.ndarray) -> np.ndarray:
        self.last = box(person)
        self.missing = 0
        return person

    def _gate(self) -> float:
        # The person may have moved further the longer they were not seen.
        return _size(self.last) * (1.0 + 0.1 * self.missing)

    def _in_crop(self, frame: np.ndarray) -> np.ndarray | None:
        h, w = frame.shape[:2]
        c, half = _centre(self.last), CROP_SCALE * _size(self.last) / 2
        x0, y0 = int(max(0, c[0] - half)), int(max(0, c[1] - half))
        x1, y1 = int(min(w, c[0] + half)), int(min(h, c[1] + half))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        # Two tries: a bigger neighbour reaching into the crop is found first, then hidden.
        for people in _people_one_by_one(self.detector, frame[y0:y1, x0:x1], 2):
            person = self._nearest([p + np.array([x0, y0, 0.0]) for p in people], tight=True)
            if person is not None:
                return person
        return None

    def _nearest(self, people: list[np.ndarray], tight: bool = False) -> np.ndarray | None:
        best, best_d = None, np.inf
        for p in people:
            b = box(p)
            if b is None:
                continue
            ratio = _size(b) / _size(self.last)
            if not 1 / SIZE_CHANGE <= ratio <= SIZE_CHANGE:
                continue
            d = float(np.linalg.norm(_centre(b) - _centre(self.last)))
            if d < best_d:
                best, best_d = p, d
        gate = 0.5 * self._gate() if tight else self._gate()
        return best if best is not None and best_d <= gate else None
