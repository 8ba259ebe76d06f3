"""Qualisys calibrations (Pose2Sim's real file) and triangulation through them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from htpose.data.camera import pixels_to_rays, project, world_to_camera
from htpose.data.qualisys import read_qualisys
from htpose.errors import DataError

CALIB = Path(__file__).resolve().parents[2] / "shared/data/pose2sim/Calib.qca.txt"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.fixture
def cameras():
    if not CALIB.exists():
        pytest.skip(f"Pose2Sim calibration not found at {CALIB}")
    return read_qualisys(CALIB)


def test_real_calibration_reads_and_triangulates(cameras):
    from pose2sim_noise import triangulate

    assert sorted(cameras) == ["cam01", "cam02", "cam03", "cam04"]
    names = sorted(cameras)
    for cam in cameras.values():
        assert (cam.width, cam.height) == (1088, 1920)
        assert 1600 < cam.focal[0] < 1750  # 107 600 sub-pixels / 64
    # Points in the capture volume are in front of every camera, and the four views
    # triangulate them back (the real detections' agreement is measured by the benchmark).
    rng = np.random.default_rng(0)
    pts = rng.uniform([-0.4, -0.4, 0.1], [0.4, 0.4, 1.9], (20, 3))
    w2c = np.array([cameras[n].rotation().numpy().T for n in names])
    centres = np.array([cameras[n].position for n in names])
    rays = []
    for n in names:
        cam_pts = world_to_camera(torch.from_numpy(pts), cameras[n])
        assert (cam_pts[:, 2] > 1).all()
        px = project(cam_pts, cameras[n].intrinsics())
        rays.append(pixels_to_rays(px, cameras[n].intrinsics()).numpy())
    rays = np.array(rays)
    for i, p in enumerate(pts):
        got = triangulate(rays[:, i], w2c, centres, np.ones(4, bool))
        np.testing.assert_allclose(got, p, atol=1e-6)


@pytest.mark.parametrize(
    "text, match",
    [
        ("<calibration><cameras/></calibration>", "no <camera>"),
        ("not xml", "not valid XML"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><calibration/>', "DOCTYPE"),
        ('<calibration><camera serial="c"><transform r11="x"/></camera></calibration>', "needs"),
    ],
)
def test_bad_calibrations_are_clean_errors(tmp_path, text, match):
    path = tmp_path / "c.qca.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=match):
        read_qualisys(path)
