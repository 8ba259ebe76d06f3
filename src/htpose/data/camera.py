"""Camera model: pinhole with Brown-Conrady distortion, world <-> camera, 2D normalisation.

Intrinsics travel as one tensor of 9 numbers per camera, ``(..., 9)`` =
``(fx, fy, cx, cy, k1, k2, k3, p1, p2)``, so a batch of windows seen by different cameras
projects in one call. All functions here are torch functions that broadcast over leading
dimensions.

Distortion: the standard Brown-Conrady (OpenCV) model is the default. Human3.6M's own
release code uses a simplified tangential term (``"h36m"``); the two differ by well under a
pixel for its cameras. Pick with ``distortion=``; a whole pipeline must use one choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from htpose.errors import DataError

DISTORTION_MODELS = ("brown_conrady", "h36m")
NORMALIZATIONS = ("screen", "person")
# Person normalisation: the RMS joint distance from the body centre maps to this length,
# about the size a Human3.6M subject has in screen normalisation.
PERSON_SCALE = 0.25


@dataclass(frozen=True)
class Camera:
    """One calibrated camera. Lengths in metres, intrinsics in pixels.

    ``orientation`` is a unit quaternion (w, x, y, z) rotating camera-frame vectors into the
    world frame; ``position`` is the camera centre in world coordinates.
    """

    name: str
    focal: tuple[float, float]
    center: tuple[float, float]
    radial: tuple[float, float, float]
    tangential: tuple[float, float]
    width: int
    height: int
    orientation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    calibrated: bool = True  # False: intrinsics are a guess (JPMA and root solving refuse it)

    def intrinsics(self) -> torch.Tensor:
        """``(9,)`` float64 tensor ``(fx, fy, cx, cy, k1, k2, k3, p1, p2)``."""
        return torch.tensor(
            [*self.focal, *self.center, *self.radial, *self.tangential], dtype=torch.float64
        )

    def rotation(self) -> torch.Tensor:
        """``(3, 3)`` float64 matrix R with ``x_world = R @ x_cam + position``."""
        return quaternion_to_matrix(torch.tensor(self.orientation, dtype=torch.float64))


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrix ``(..., 3, 3)`` of unit quaternions ``(..., 4)`` given as (w, x, y, z)."""
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*q.shape[:-1], 3, 3)


def world_to_camera(points: torch.Tensor, camera: Camera) -> torch.Tensor:
    """``(..., 3)`` world points to the camera frame (same units)."""
    rot = camera.rotation().to(points)
    pos = torch.tensor(camera.position, dtype=points.dtype, device=points.device)
    return (points - pos) @ rot  # row-vector form of R^T (X - t)


def camera_to_world(points: torch.Tensor, camera: Camera) -> torch.Tensor:
    """``(..., 3)`` camera-frame points to the world frame."""
    rot = camera.rotation().to(points)
    pos = torch.tensor(camera.position, dtype=points.dtype, device=points.device)
    return points @ rot.T + pos


def distort(
    xy: torch.Tensor, intrinsics: torch.Tensor, model: str = "brown_conrady"
) -> torch.Tensor:
    """Apply lens distortion to normalised image coordinates ``(..., 2)`` (x/z, y/z)."""
    k1, k2, k3, p1, p2 = (intrinsics[..., i, None] for i in range(4, 9))
    x, y = xy[..., 0:1], xy[..., 1:2]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    if model == "brown_conrady":
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    elif model == "h36m":
        tan = p1 * y + p2 * x
        xd = x * (radial + tan) + p2 * r2
        yd = y * (radial + tan) + p1 * r2
    else:
        raise ValueError(f"unknown distortion model {model!r}; choose from {DISTORTION_MODELS}")
    return torch.cat([xd, yd], dim=-1)


def undistort(
    xy: torch.Tensor, intrinsics: torch.Tensor, model: str = "brown_conrady", iterations: int = 20
) -> torch.Tensor:
    """Invert :func:`distort` by fixed-point iteration (exact to ~1e-9 for real lenses)."""
    und = xy.clone()
    for _ in range(iterations):
        und = und - (distort(und, intrinsics, model) - xy)
    return und


def project(
    points: torch.Tensor, intrinsics: torch.Tensor, model: str = "brown_conrady"
) -> torch.Tensor:
    """Camera-frame points ``(..., 3)`` to pixels ``(..., 2)`` with distortion.

    ``intrinsics`` ``(..., 9)`` broadcasts against the leading dimensions of ``points``
    minus the last one; pass ``(B, 1, 1, 9)`` for points ``(B, F, J, 3)``.
    """
    z = points[..., 2:3].clamp_min(1e-6)  # points behind the camera cannot be imaged
    xy = distort(points[..., :2] / z, intrinsics, model)
    return xy * intrinsics[..., 0:2] + intrinsics[..., 2:4]


def pixels_to_rays(
    pixels: torch.Tensor, intrinsics: torch.Tensor, model: str = "brown_conrady"
) -> torch.Tensor:
    """Pixels ``(..., 2)`` to undistorted normalised coordinates ``(..., 2)`` (x/z, y/z)."""
    xy = (pixels - intrinsics[..., 2:4]) / intrinsics[..., 0:2]
    return undistort(xy, intrinsics, model)


def normalize_screen(pixels: torch.Tensor, width: float, height: float) -> torch.Tensor:
    """Pixels to the field's normalised screen coordinates: x in [-1, 1], aspect kept."""
    return pixels / width * 2 - torch.tensor([1.0, height / width], dtype=pixels.dtype)


def normalize_keypoints(
    pixels: torch.Tensor, width: float, height: float, mode: str = "screen"
) -> torch.Tensor:
    """Windows of pixels ``(..., F, J, 2)`` to the model's input, per ``mode``.

    ``"screen"``: :func:`normalize_screen`. ``"person"``: each window is centred on its mean
    joint position and divided by its mean (over frames) RMS joint distance from the frame's
    centroid, times :data:`PERSON_SCALE`. The result does not depend on the image size, the
    aspect ratio, where the person is in the image or how large: only on the pose, its
    perspective and its motion within the window. Mirroring (negating x after swapping left
    and right) commutes with both modes.
    """
    if mode == "screen":
        return normalize_screen(pixels, width, height)
    if mode != "person":
        raise ValueError(f"unknown normalization {mode!r}; choose from {NORMALIZATIONS}")
    centre = pixels.mean(dim=(-3, -2), keepdim=True)
    spread = (pixels - pixels.mean(dim=-2, keepdim=True)).pow(2).sum(-1).mean(-1).sqrt()
    size = spread.mean(dim=-1)[..., None, None, None].clamp_min(1e-6)
    return (pixels - centre) / size * PERSON_SCALE


def denormalize_screen(xy: torch.Tensor, width: float, height: float) -> torch.Tensor:
    """Inverse of :func:`normalize_screen`."""
    return (xy + torch.tensor([1.0, height / width], dtype=xy.dtype)) * width / 2


def load_h36m_cameras(path: str | Path) -> dict[str, list[Camera]]:
    """Read the Human3.6M camera file: subject -> its 4 cameras (metres, world Z up)."""
    from htpose.io import read_json

    path = Path(path)
    data = read_json(path, "camera file")
    try:
        intrinsics = data["intrinsics"]
        extrinsics = data["extrinsics"]
        if not isinstance(intrinsics, list) or not isinstance(extrinsics, dict):
            raise TypeError("wrong types")
    except (KeyError, TypeError) as exc:
        raise DataError(f"camera file {path} lacks 'intrinsics'/'extrinsics'") from exc
    cameras: dict[str, list[Camera]] = {}
    try:
        for subject, views in extrinsics.items():
            if len(views) != len(intrinsics):
                raise DataError(f"camera file {path}: subject {subject} has {len(views)} views")
            cameras[subject] = [
                _checked_camera(_h36m_camera(subject, intr, extr), path)
                for intr, extr in zip(intrinsics, views)
            ]
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise DataError(f"camera file {path} has a malformed camera entry: {exc}") from exc
    return cameras


def _h36m_camera(subject: str, intr: dict, extr: dict) -> Camera:
    """One camera from the file's intrinsics and one subject's extrinsics (mm -> m)."""
    return Camera(
        name=f"{subject}/{intr['id']}",
        focal=tuple(map(float, intr["focal_length"])),
        center=tuple(map(float, intr["center"])),
        radial=tuple(map(float, intr["radial_distortion"])),
        tangential=tuple(map(float, intr["tangential_distortion"])),
        width=int(intr["res_w"]),
        height=int(intr["res_h"]),
        orientation=tuple(map(float, extr["orientation"])),
        position=tuple(float(v) / 1000.0 for v in extr["translation"]),
    )


def _checked_camera(cam: Camera, path: Path) -> Camera:
    """``cam`` if every field has its length and a sane value; a one-line error otherwise."""
    lengths = {
        "focal_length": (cam.focal, 2),
        "center": (cam.center, 2),
        "radial_distortion": (cam.radial, 3),
        "tangential_distortion": (cam.tangential, 2),
        "orientation": (cam.orientation, 4),
        "translation": (cam.position, 3),
    }
    for key, (value, size) in lengths.items():
        if len(value) != size:
            raise DataError(f"camera file {path}: camera {cam.name} {key!r} needs {size} values")
    values = [*cam.focal, *cam.center, *cam.radial, *cam.tangential, *cam.position,
              *cam.orientation]  # fmt: skip
    if (
        not all(math.isfinite(v) for v in values)
        or min(cam.focal) <= 0
        or not 0 < cam.width <= 100_000
        or not 0 < cam.height <= 100_000
        or sum(q * q for q in cam.orientation) < 1e-12
    ):
        raise DataError(f"camera file {path}: camera {cam.name} has invalid values")
    return cam
