"""Random virtual cameras: the cameras users film with, for training and for testing.

A camera is placed around a motion window and aimed at it (look-at), then turned a little so
the person is off-centre. Geometry is in the world frame of the clip collections (metres, Z
up, floor near z = 0); cameras follow the OpenCV convention (x right, y down, z forward).

Two uses, one description (:class:`CameraRanges`):

- **Training** draws every window's camera from the broad ranges of ``data.cameras`` (see
  :class:`htpose.config.CameraAugConfig` for the defaults and what they cover).
- **Testing** (``htpose evaluate --cameras random:N:SEED``) draws N cameras per clip from four
  named kinds that users film with (:data:`TEST_KINDS`): a handheld phone, a low webcam, a
  high corner camera and a distant telephoto. Their seeds live in a stream of their own
  (:func:`test_camera_rng`), never one that training draws from, and results are reported per
  kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from htpose.data.camera import Camera, project

# Height of the point a camera is aimed at, above the window's mean pelvis (the chest).
AIM_ABOVE_PELVIS = 0.2


@dataclass(frozen=True)
class CameraRanges:
    """Where a random camera may be. Angles in degrees, lengths in metres.

    ``focal_ratio``: focal length as a multiple of the image width (log-uniform);
    ``distance``: horizontal distance to the person (log-uniform); ``height``: camera height
    above the floor; ``pitch``: optical axis above (+) or below (-) the horizon, a draw
    outside it is redrawn; ``roll``: up to this much either way; ``offcentre``: the aim point
    moves by up to this fraction of the half field of view, so the person is not always in the
    middle; ``image_sizes``: ``(width, height)`` pairs; ``distortion_prob``: share of cameras
    with radial lens distortion ``k1`` in ``k1`` (``k2 = -k1 / 4``).
    """

    height: tuple[float, float] = (0.2, 4.0)
    distance: tuple[float, float] = (2.0, 20.0)
    pitch: tuple[float, float] = (-45.0, 30.0)
    roll: float = 10.0
    focal_ratio: tuple[float, float] = (0.5, 4.0)
    image_sizes: tuple[tuple[int, int], ...] = (
        (1920, 1080), (1080, 1920), (1280, 720), (640, 480), (1000, 1000),
    )  # fmt: skip
    offcentre: float = 0.5
    distortion_prob: float = 0.3
    k1: tuple[float, float] = (-0.3, 0.1)


# The test kinds: what users film with, each a corner of the training ranges.
TEST_KINDS: dict[str, CameraRanges] = {
    "phone": CameraRanges(
        height=(1.0, 1.7), distance=(2.0, 5.0), focal_ratio=(0.7, 1.2),
        image_sizes=((1080, 1920), (1920, 1080)), offcentre=0.4, distortion_prob=0.0,
    ),
    "webcam_low": CameraRanges(
        height=(0.2, 0.6), distance=(2.0, 4.0), pitch=(-10.0, 30.0), focal_ratio=(0.5, 0.9),
        image_sizes=((1280, 720), (640, 480)), offcentre=0.3, distortion_prob=0.5,
    ),
    "corner_high": CameraRanges(
        height=(2.5, 4.0), distance=(3.0, 8.0), pitch=(-45.0, -10.0), focal_ratio=(0.5, 1.0),
        image_sizes=((1920, 1080), (1280, 720)), offcentre=0.3, distortion_prob=0.5,
    ),
    "telephoto": CameraRanges(
        height=(1.0, 2.0), distance=(10.0, 20.0), focal_ratio=(2.0, 4.0),
        image_sizes=((1920, 1080), (1000, 1000)), offcentre=0.5, distortion_prob=0.0,
    ),
}  # fmt: skip

# Test cameras are drawn from this stream; training draws from (train.seed, step) streams.
TEST_STREAM = 0x7E57CA


def test_camera_rng(seed: int, clip_name: str) -> np.random.Generator:
    """The generator of one clip's test cameras (a stream training never uses)."""
    import zlib

    return np.random.default_rng([TEST_STREAM, seed, zlib.crc32(clip_name.encode())])


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def look_at(position: np.ndarray, target: np.ndarray, roll_deg: float) -> np.ndarray:
    """Camera-to-world rotation ``(3, 3)`` (columns: right, down, forward) aimed at ``target``."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    if np.linalg.norm(right) < 1e-6:  # looking straight up or down
        right = np.array([1.0, 0.0, 0.0])
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    roll = math.radians(roll_deg)
    c, s = math.cos(roll), math.sin(roll)
    right, down = c * right + s * down, -s * right + c * down
    return np.stack([right, down, forward], axis=1)


def matrix_to_quaternion(rot: np.ndarray) -> tuple[float, float, float, float]:
    """Unit quaternion (w, x, y, z) of a rotation matrix (the inverse of the camera module's)."""
    m = rot
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = math.sqrt(trace + 1.0) * 2
        q = (0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s)
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = ((m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s)
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = ((m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s)
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = ((m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s)
    norm = math.sqrt(sum(v * v for v in q))
    return tuple(float(v / norm) for v in q)  # type: ignore[return-value]


def draw_camera(
    rng: np.random.Generator, window: np.ndarray, ranges: CameraRanges, name: str = "virtual"
) -> Camera:
    """A random camera aimed at the motion window ``(F, J, 3)`` (world, Z up).

    Placement: horizontal distance and height per ``ranges``, any direction around the
    window's mean pelvis; aimed at the chest, then turned by up to ``offcentre`` of the half
    field of view; rolled. A pitch outside ``ranges.pitch`` is redrawn (50 tries, then the
    pitch is clamped by lowering or raising the aim point).
    """
    width, height = ranges.image_sizes[int(rng.integers(len(ranges.image_sizes)))]
    focal = _log_uniform(rng, *ranges.focal_ratio) * width
    centre = window[:, 0].mean(axis=0)
    aim = centre + np.array([0.0, 0.0, AIM_ABOVE_PELVIS])
    half_fov = (math.atan(width / 2 / focal), math.atan(height / 2 / focal))
    lo, hi = (math.radians(v) for v in ranges.pitch)
    for _ in range(50):
        distance = _log_uniform(rng, *ranges.distance)
        yaw = rng.uniform(0, 2 * math.pi)
        cam_h = rng.uniform(*ranges.height)
        position = np.array(
            [centre[0] + distance * math.cos(yaw), centre[1] + distance * math.sin(yaw), cam_h]
        )
        # Off-centre: turn the line of sight sideways and vertically.
        turn_x = rng.uniform(-1, 1) * ranges.offcentre * half_fov[0]
        turn_y = rng.uniform(-1, 1) * ranges.offcentre * half_fov[1]
        pitch = math.atan2(aim[2] - cam_h, distance) + turn_y
        if lo <= pitch <= hi:
            break
    pitch = min(max(pitch, lo), hi)
    heading = math.atan2(aim[1] - position[1], aim[0] - position[0]) + turn_x
    target = position + np.array(
        [math.cos(heading) * math.cos(pitch), math.sin(heading) * math.cos(pitch), math.sin(pitch)]
    )
    rot = look_at(position, target, rng.uniform(-ranges.roll, ranges.roll))
    radial = (0.0, 0.0, 0.0)
    if rng.random() < ranges.distortion_prob:
        k1 = rng.uniform(*ranges.k1)
        radial = (float(k1), float(-k1 / 4), 0.0)
    return Camera(
        name=name,
        focal=(float(focal), float(focal)),
        center=(width / 2, height / 2),
        radial=radial,
        tangential=(0.0, 0.0),
        width=int(width),
        height=int(height),
        orientation=matrix_to_quaternion(rot),
        position=tuple(float(v) for v in position),  # type: ignore[arg-type]
    )


def world_to_camera_np(points: np.ndarray, camera: Camera) -> np.ndarray:
    """``(..., 3)`` world points to the camera frame, in NumPy (the training loop's path)."""
    rot = camera.rotation().numpy()
    return (points - np.asarray(camera.position)) @ rot


def project_np(points_cam: np.ndarray, camera: Camera, distortion: str) -> np.ndarray:
    """Camera-frame points ``(..., 3)`` to pixels ``(..., 2)`` through the shared camera model.

    Lens distortion is a polynomial that folds back far outside the image, so
    :func:`visible` also rejects rays far outside any real field of view.
    """
    pts = torch.from_numpy(np.ascontiguousarray(points_cam, dtype=np.float64))
    return project(pts, camera.intrinsics(), distortion).numpy()


def visible(pixels: np.ndarray, points_cam: np.ndarray, camera: Camera) -> np.ndarray:
    """``(..., J)`` mask of joints in front of the camera and inside the image."""
    x, y = pixels[..., 0], pixels[..., 1]
    return (
        (points_cam[..., 2] > 0.1)
        & (x >= 0) & (x < camera.width) & (y >= 0) & (y < camera.height)
        & (np.abs(points_cam[..., :2] / np.maximum(points_cam[..., 2:3], 1e-6)).max(-1) < 2.0)
    )  # fmt: skip


def aimed_view(
    rng: np.random.Generator,
    window: np.ndarray,
    ranges: CameraRanges,
    distortion: str,
    min_visible: float,
    tries: int,
    keep_best: bool = False,
    name: str = "virtual",
) -> tuple[np.ndarray, np.ndarray, Camera, np.ndarray] | None:
    """A random camera that sees the window ``(F, J, 3)``: camera-frame joints, pixels, the
    camera and the ``(F, J)`` visibility mask of the first of ``tries`` draws that keeps at
    least ``min_visible`` of the joints in view and every joint in some frame. None if no
    draw does, unless ``keep_best``: then the draw with the most joints in view."""
    best = None
    for _ in range(tries):
        cam = draw_camera(rng, window, ranges, name)
        points = world_to_camera_np(window, cam)
        if (points[..., 2] <= 0.1).any():
            continue
        pixels = project_np(points, cam, distortion)
        seen = visible(pixels, points, cam)
        if not seen.any(axis=0).all():
            continue
        if seen.mean() >= min_visible:
            return points, pixels, cam, seen
        if best is None or seen.mean() > best[3].mean():
            best = (points, pixels, cam, seen)
    return best if keep_best else None
