"""Qualisys camera calibrations (``.qca.txt`` XML, as Pose2Sim ships): cameras for htpose.

Per camera, ``transform`` is the camera's pose in the world: ``x, y, z`` the camera centre in
millimetres, and the rows ``r1.``, ``r2.``, ``r3.`` the camera's right, up and backward axes
in world coordinates, so in OpenCV terms (x right, y down, z forward) the world-to-camera
rotation is ``diag(1, -1, -1) @ R_file``. ``intrinsic`` is in sensor sub-pixel units: the
centre point and focal lengths are divided by 64 for pixels (U is image x); the image size
is the marker field of view plus one. Distortion: radial 1-3 and tangential 1-2, read as
Brown-Conrady ``k1..k3, p1, p2``.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from htpose.data.camera import Camera
from htpose.data.virtual_cameras import matrix_to_quaternion
from htpose.errors import DataError
from htpose.io import read_text

SUBPIXELS = 64.0


def _number(element: ET.Element, name: str, where: str) -> float:
    try:
        value = float(element.attrib[name])
    except (KeyError, ValueError) as exc:
        raise DataError(f"{where}: missing or non-numeric {name!r}") from exc
    if not math.isfinite(value):
        raise DataError(f"{where}: {name!r} is not finite")
    return value


def read_qualisys(path: str | Path) -> dict[str, Camera]:
    """Cameras by serial name (``cam01`` ...) from a Qualisys calibration file."""
    text = read_text(path, "Qualisys calibration")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:  # no entity expansion, ever
        raise DataError(f"{path}: XML with a DOCTYPE or entities is refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise DataError(f"{path} is not valid XML: {exc}") from exc
    cameras = {}
    for cam in root.iter("camera"):
        name = cam.attrib.get("serial", f"cam{len(cameras) + 1:02d}")
        where = f"{path}: camera {name}"
        transform, intrinsic, fov = (
            cam.find("transform"),
            cam.find("intrinsic"),
            cam.find("fov_marker"),
        )
        if transform is None or intrinsic is None or fov is None:
            raise DataError(f"{where}: needs transform, intrinsic and fov_marker")
        rows = np.array(
            [[_number(transform, f"r{i}{j}", where) for j in (1, 2, 3)] for i in (1, 2, 3)]
        )
        if not np.allclose(rows @ rows.T, np.eye(3), atol=1e-4):
            raise DataError(f"{where}: the rotation is not orthonormal")
        world_to_cam = np.diag([1.0, -1.0, -1.0]) @ rows
        if np.linalg.det(world_to_cam) < 0:
            world_to_cam = -world_to_cam  # a left-handed file: keep the axes' directions
        centre = np.array([_number(transform, k, where) for k in "xyz"]) / 1000.0
        width = int(_number(fov, "right", where) - _number(fov, "left", where)) + 1
        height = int(_number(fov, "bottom", where) - _number(fov, "top", where)) + 1
        focal = tuple(_number(intrinsic, f"focalLength{a}", where) / SUBPIXELS for a in "UV")
        if not (0 < width <= 100_000 and 0 < height <= 100_000 and min(focal) > 0):
            raise DataError(f"{where}: implausible image size or focal length")
        cameras[name] = Camera(
            name=name,
            focal=focal,
            center=tuple(_number(intrinsic, f"centerPoint{a}", where) / SUBPIXELS for a in "UV"),
            radial=tuple(_number(intrinsic, f"radialDistortion{i}", where) for i in (1, 2, 3)),
            tangential=tuple(_number(intrinsic, f"tangentalDistortion{i}", where) for i in (1, 2)),
            width=width,
            height=height,
            orientation=matrix_to_quaternion(world_to_cam.T),
            position=tuple(float(v) for v in centre),
        )  # type: ignore[arg-type]
    if not cameras:
        raise DataError(f"{path}: no <camera> entries")
    return cameras
