import json
import math

import numpy as np
import pytest
import torch

from htpose.data.camera import (
    Camera,
    camera_to_world,
    denormalize_screen,
    distort,
    load_h36m_cameras,
    normalize_screen,
    pixels_to_rays,
    project,
    quaternion_to_matrix,
    undistort,
    world_to_camera,
)
from htpose.errors import DataError

CAM = Camera(
    "test",
    (1000.0, 980.0),
    (500.0, 490.0),
    (-0.2, 0.05, 0.01),
    (0.001, -0.002),
    1000,
    1000,
    orientation=(0.7, 0.1, -0.5, 0.2),
    position=(1.0, -4.0, 1.5),
)


def test_quaternion_matrix_is_rotation():
    r = quaternion_to_matrix(torch.tensor([0.3, -0.2, 0.9, 0.1], dtype=torch.float64))
    assert torch.allclose(r @ r.T, torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert math.isclose(torch.linalg.det(r).item(), 1.0, abs_tol=1e-12)


def test_quaternion_90_degrees_about_z():
    half = math.sqrt(0.5)
    r = quaternion_to_matrix(torch.tensor([half, 0, 0, half], dtype=torch.float64))
    assert torch.allclose(
        r @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
        torch.tensor([0.0, 1, 0], dtype=torch.float64),
        atol=1e-12,
    )


def test_world_camera_round_trip():
    pts = torch.randn(10, 17, 3, dtype=torch.float64)
    back = camera_to_world(world_to_camera(pts, CAM), CAM)
    assert torch.allclose(back, pts, atol=1e-12)


def test_camera_centre_maps_to_origin():
    centre = torch.tensor(CAM.position, dtype=torch.float64)
    assert torch.allclose(
        world_to_camera(centre, CAM), torch.zeros(3, dtype=torch.float64), atol=1e-12
    )


def test_distortion_against_hand_computed_values():
    k1, k2, k3, p1, p2 = -0.2, 0.05, 0.01, 0.001, -0.002
    x, y = 0.3, -0.1
    r2 = x * x + y * y  # 0.1
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3  # 0.98051
    expected = (
        x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
        y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y,
    )
    assert math.isclose(radial, 0.98051, rel_tol=1e-12)
    got = distort(torch.tensor([x, y], dtype=torch.float64), CAM.intrinsics())
    assert got.tolist() == pytest.approx([0.293533, -0.097811], abs=1e-6)
    assert got.tolist() == pytest.approx(list(expected), abs=1e-12)


def test_h36m_distortion_variant_differs_only_in_tangential_terms():
    xy = torch.tensor([0.3, -0.1], dtype=torch.float64)
    no_tan = CAM.intrinsics().clone()
    no_tan[7:] = 0
    assert torch.allclose(distort(xy, no_tan, "h36m"), distort(xy, no_tan), atol=1e-15)
    assert not torch.allclose(distort(xy, CAM.intrinsics(), "h36m"), distort(xy, CAM.intrinsics()))


@pytest.mark.parametrize("model", ["brown_conrady", "h36m"])
def test_undistort_inverts_distort(model):
    xy = (torch.rand(200, 2, dtype=torch.float64) - 0.5) * 0.8
    back = undistort(distort(xy, CAM.intrinsics(), model), CAM.intrinsics(), model)
    assert torch.allclose(back, xy, atol=1e-9)


def test_projection_of_a_known_point_without_distortion():
    cam = Camera("p", (1000.0, 1000.0), (500.0, 500.0), (0, 0, 0), (0, 0), 1000, 1000)
    px = project(torch.tensor([0.2, -0.1, 2.0], dtype=torch.float64), cam.intrinsics())
    assert px.tolist() == pytest.approx([600.0, 450.0])


def test_projection_round_trip_through_rays():
    pts = torch.randn(50, 3, dtype=torch.float64) * 0.4 + torch.tensor(
        [0, 0, 4.0], dtype=torch.float64
    )
    px = project(pts, CAM.intrinsics())
    rays = pixels_to_rays(px, CAM.intrinsics())
    assert torch.allclose(rays * pts[:, 2:], pts[:, :2], atol=1e-8)


def test_screen_normalisation_values_and_inverse():
    px = torch.tensor([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]], dtype=torch.float64)
    norm = normalize_screen(px, 1000, 1002)
    assert norm[0].tolist() == pytest.approx([-1.0, -1.002])
    assert norm[1].tolist() == pytest.approx([1.0, 1.002])
    assert norm[2].tolist() == pytest.approx([0.0, 0.0])
    assert torch.allclose(denormalize_screen(norm, 1000, 1002), px)


def test_real_h36m_cameras_see_the_origin(cameras_path):
    rig = load_h36m_cameras(cameras_path)
    assert set(rig) == {"S1", "S5", "S6", "S7", "S8", "S9", "S11"}
    for cams in rig.values():
        assert len(cams) == 4
        for cam in cams:
            centre = world_to_camera(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), cam)
            assert 3.0 < centre[2] < 8.0  # a few metres in front of the camera
            px = project(centre, cam.intrinsics())
            assert 0 < px[0] < cam.width and 0 < px[1] < cam.height


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"intrinsics": []}), "lacks"),
        (json.dumps({"intrinsics": [{"id": "1"}], "extrinsics": {"S1": [{}]}}), "malformed"),
    ],
)
def test_bad_camera_files_raise_one_line_errors(tmp_path, content, message):
    path = tmp_path / "cams.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as err:
        load_h36m_cameras(path)
    assert "\n" not in str(err.value)


def test_missing_camera_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_h36m_cameras(tmp_path / "nope.json")


def test_nan_in_camera_file_is_refused(tmp_path, cameras_path):
    data = json.loads(cameras_path.read_text())
    data["intrinsics"][0]["focal_length"][0] = float("nan")
    path = tmp_path / "cams.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="invalid values"):
        load_h36m_cameras(path)


def test_numpy_inputs_not_needed():
    # The camera API is torch-only; numpy arrays must be converted by the caller.
    assert isinstance(CAM.intrinsics(), torch.Tensor)
    assert np.allclose(CAM.rotation().numpy() @ CAM.rotation().numpy().T, np.eye(3))
