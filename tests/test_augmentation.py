"""Camera and pose augmentation, person normalisation and the novel-camera protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from htpose.config import Config, apply_overrides, config_from_dict
from htpose.data.augment import (
    LIMB_PARTS,
    mix_parts,
    rotation_about,
    scale_bones,
    tilt,
    torso_frames,
)
from htpose.data.camera import normalize_keypoints
from htpose.data.capture import novel_capture
from htpose.data.clips import read_clips
from htpose.data.sequences import DetectorNoise, flip_2d
from htpose.data.virtual_cameras import (
    TEST_KINDS,
    CameraRanges,
    draw_camera,
    matrix_to_quaternion,
    project_np,
    visible,
    world_to_camera_np,
)
from htpose.data.windows import Augmentation, CaptureSampler
from htpose.errors import ConfigError
from htpose.skeleton import BONES, FLIP_PERM


def _walk(frames: int = 40) -> np.ndarray:
    """A synthetic upright figure walking along x (world, Z up)."""
    rng = np.random.default_rng(0)
    base = np.array(
        [[0, 0, 1], [0, -0.1, 1], [0, -0.1, 0.55], [0, -0.1, 0.1], [0, 0.1, 1], [0, 0.1, 0.55],
         [0, 0.1, 0.1], [0, 0, 1.25], [0, 0, 1.5], [0.05, 0, 1.6], [0, 0, 1.75], [0, 0.18, 1.45],
         [0, 0.2, 1.15], [0, 0.2, 0.9], [0, -0.18, 1.45], [0, -0.2, 1.15], [0, -0.2, 0.9]],
        dtype=np.float64,
    )  # fmt: skip
    t = np.arange(frames)[:, None, None]
    return base[None] + np.array([0.02, 0, 0]) * t + rng.normal(0, 0.005, (frames, 17, 3))


def _bone_lengths(window: np.ndarray) -> np.ndarray:
    return np.stack([np.linalg.norm(window[:, c] - window[:, p], axis=-1) for c, p in BONES], -1)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), kind=st.sampled_from([None, *TEST_KINDS]))
def test_random_cameras_respect_their_ranges(seed, kind):
    ranges = CameraRanges() if kind is None else TEST_KINDS[kind]
    window = _walk()
    cam = draw_camera(np.random.default_rng(seed), window, ranges)
    rot = cam.rotation().numpy()
    assert np.allclose(rot.T @ rot, np.eye(3), atol=1e-9)
    assert (cam.width, cam.height) in ranges.image_sizes
    assert ranges.focal_ratio[0] <= cam.focal[0] / cam.width <= ranges.focal_ratio[1] + 1e-9
    assert ranges.height[0] <= cam.position[2] <= ranges.height[1]
    centre = window[:, 0].mean(0)
    distance = math.hypot(cam.position[0] - centre[0], cam.position[1] - centre[1])
    assert ranges.distance[0] - 1e-9 <= distance <= ranges.distance[1] + 1e-9
    forward = rot[:, 2]
    pitch = math.degrees(math.asin(forward[2]))
    assert ranges.pitch[0] - 1e-6 <= pitch <= ranges.pitch[1] + 1e-6
    # Roll: the camera's right axis stays within the roll range of the horizon.
    roll = math.degrees(math.asin(abs(rot[2, 0]) / max(1e-9, math.cos(math.radians(pitch)))))
    assert roll <= ranges.roll + 1e-6


def test_quaternion_round_trip():
    rng = np.random.default_rng(1)
    for _ in range(50):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        q *= np.sign(np.linalg.det(q))
        from htpose.data.camera import quaternion_to_matrix

        back = quaternion_to_matrix(torch.tensor(matrix_to_quaternion(q), dtype=torch.float64))
        assert np.allclose(back.numpy(), q, atol=1e-9)


def test_aimed_camera_sees_the_person_and_off_centre_moves_it():
    window = _walk()

    def offsets(offcentre: float) -> list[float]:
        out = []
        for seed in range(30):
            ranges = CameraRanges(
                offcentre=offcentre, distortion_prob=0.0, focal_ratio=(0.8, 1.0),
                distance=(5.0, 8.0),
            )  # fmt: skip
            cam = draw_camera(np.random.default_rng(seed), window, ranges)
            pts = world_to_camera_np(window, cam)
            px = project_np(pts, cam, "brown_conrady")
            if offcentre == 0:
                assert visible(px, pts, cam).mean() > 0.9
            centre = px[:, 0].mean(0) / np.array([cam.width, cam.height])
            out.append(np.abs(centre - 0.5).max())
        return out

    aimed, moved = offsets(0.0), offsets(0.8)
    assert np.median(aimed) < 0.1
    assert np.median(moved) > 2 * np.median(aimed)


@pytest.mark.parametrize("size", [(1920, 1080), (1080, 1920), (640, 480), (1000, 1000)])
def test_person_normalisation_ignores_image_size_focal_and_placement(size):
    """The same view imaged on any sensor, zoomed and shifted, gives the same model input."""
    rng = np.random.default_rng(3)
    pixels = torch.from_numpy(rng.normal(500, 80, (2, 27, 17, 2)))
    ref = normalize_keypoints(pixels, 1000, 1000, "person")
    w, h = size
    moved = pixels * (w / 731.0) + torch.tensor([w * 0.3, h * 0.1])
    out = normalize_keypoints(moved, w, h, "person")
    assert torch.allclose(out, ref, atol=1e-9)
    # Mirroring commutes with the normalisation (test-time flip relies on it).
    mirrored = moved.clone()[..., list(FLIP_PERM), :]
    mirrored[..., 0] = w - mirrored[..., 0]
    flipped = normalize_keypoints(mirrored, w, h, "person")
    assert torch.allclose(flipped, flip_2d(out), atol=1e-9)


def test_scale_bones_keeps_symmetry_and_rigidity():
    window = _walk()
    out = scale_bones(window, np.random.default_rng(5), (0.6, 0.6), 0.0)
    ratio = _bone_lengths(out) / _bone_lengths(window)
    assert np.allclose(ratio, 0.6, atol=1e-9)
    out = scale_bones(window, np.random.default_rng(6), (0.8, 1.1), 0.08)
    ratio = (_bone_lengths(out) / _bone_lengths(window)).mean(0)
    assert ratio.min() >= 0.8 * 0.92 - 1e-9 and ratio.max() <= 1.1 * 1.08 + 1e-9
    child = {c: i for i, (c, _) in enumerate(BONES)}
    for left, right in ((4, 1), (5, 2), (6, 3), (11, 14), (12, 15), (13, 16)):
        assert ratio[child[left]] == pytest.approx(ratio[child[right]])


def _turned(window: np.ndarray, heading: float, lean: float) -> np.ndarray:
    """``window`` turned about the vertical by ``heading`` and leant by ``lean`` degrees."""
    turn = rotation_about(np.array([0.0, 0.0, 1.0]), math.radians(heading))
    return (
        tilt(window @ turn.T, np.random.default_rng(0), 0.0)
        if lean == 0
        else tilt(window @ turn.T, np.random.default_rng(int(lean)), lean)
    )


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), part=st.sampled_from(sorted(LIMB_PARTS)),
       heading=st.floats(-180, 180), lean=st.floats(0, 170))  # fmt: skip
def test_mixed_limbs_move_like_the_donor_on_the_window_s_own_bones(seed, part, heading, lean):
    """Bone lengths stay the window's; joints outside the part do not move; the moved bones
    point, in the window's torso frame, where the donor's point in the donor's, however the
    donor is turned or leant (a random other body: its limbs scrambled by noise)."""
    rng = np.random.default_rng(seed)
    window = scale_bones(_walk(30), rng, (0.7, 1.2), 0.05)
    donor = _turned(_walk(30) + rng.normal(0, 0.15, (30, 17, 3)), heading, lean)
    out = mix_parts(window, donor, part)
    assert np.allclose(_bone_lengths(out), _bone_lengths(window), atol=1e-9)
    bones, sideways, up = LIMB_PARTS[part]
    moved = [j for j, _ in bones]
    still = [j for j in range(17) if j not in moved]
    assert np.array_equal(out[:, still], window[:, still])
    own, theirs = torso_frames(out, sideways, up), torso_frames(donor, sideways, up)
    for joint, parent in bones:
        got = out[:, joint] - out[:, parent]
        want = donor[:, joint] - donor[:, parent]
        got = np.einsum("fij,fi->fj", own, got / np.linalg.norm(got, axis=-1, keepdims=True))
        want = np.einsum("fij,fi->fj", theirs, want / np.linalg.norm(want, axis=-1, keepdims=True))
        assert np.allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("part", sorted(LIMB_PARTS))
def test_a_window_mixed_with_itself_or_its_turned_copy_is_unchanged(part):
    window = _walk(25)
    assert np.allclose(mix_parts(window, window, part), window, atol=1e-9)
    assert np.allclose(mix_parts(window, _turned(window, 120.0, 60.0), part), window, atol=1e-9)


def test_part_mixing_changes_a_share_of_windows_and_no_stream_when_off():
    clips = [
        _walk(60),
        _walk(80)[::-1].copy() + np.random.default_rng(1).normal(0, 0.1, (80, 17, 3)),
    ]
    off = CaptureSampler(clips, 27, [], Augmentation())
    on = CaptureSampler(clips, 27, [], Augmentation(mix_prob=0.5))
    for k in range(6):  # off: exactly the raw draw, no extra random numbers taken
        rng_a, rng_b = np.random.default_rng([3, k]), np.random.default_rng([3, k])
        assert np.array_equal(off.world_window(rng_a), off._raw_window(rng_b))
        rng_b.random(2)  # the scale and tilt draws, always made
        assert rng_a.random() == rng_b.random()
    mixed = sum(
        not np.array_equal(on.world_window(np.random.default_rng([4, k])),
                           off.world_window(np.random.default_rng([4, k])))
        for k in range(40)
    )  # fmt: skip
    assert 8 <= mixed <= 32


def test_tilt_is_rigid_and_rests_on_the_floor():
    window = _walk()
    for seed in range(10):
        out = tilt(window, np.random.default_rng(seed), 180.0)
        assert np.allclose(_bone_lengths(out), _bone_lengths(window), atol=1e-9)
        assert out[..., 2].min() == pytest.approx(0.0, abs=1e-12)
    lying = tilt(window, np.random.default_rng(0), 0.0)
    assert np.allclose(lying - lying[:1, :1], window - window[:1, :1] + [0, 0, 0], atol=1e-9)


@pytest.mark.parametrize("angle", [0.0, 37.0, 90.0, -135.0, 180.0])
def test_tilted_collection_turns_every_clip_by_the_angle(angle):
    from htpose.data.clips import ClipCollection

    window = _walk()
    clips = ClipCollection({"a": window.astype(np.float32), "b": window[::-1].copy()}, 50.0)
    out = clips.tilted(angle, seed=3)
    for name, clip in out.clips.items():
        assert np.allclose(_bone_lengths(clip), _bone_lengths(clips.clips[name]), atol=1e-5)
        assert clip[..., 2].min() == pytest.approx(0.0, abs=1e-6)
        # The trunk (pelvis -> thorax), upright in the walk, leans by the angle.
        trunk = clip[:, 8] - clip[:, 0]
        up = trunk[:, 2] / np.linalg.norm(trunk, axis=1)
        lean = np.median(np.degrees(np.arccos(np.clip(up, -1, 1))))
        assert lean == pytest.approx(abs(angle), abs=1.5)  # the walk's trunk jitters ~1 deg
    assert out.tilted(0.0).clips.keys() == clips.clips.keys()


def test_capture_sampler_fills_out_of_frame_joints(cmu_path, cameras_path):
    from htpose.data.camera import load_h36m_cameras
    from htpose.data.temporal import resample

    full = read_clips(cmu_path).select("train")
    clips = [resample(c, full.fps) for c in list(full.clips.values())[:5]]
    fixed = load_h36m_cameras(cameras_path)["S1"]
    tight = CameraRanges(focal_ratio=(3.0, 4.0), distance=(2.0, 3.0))  # often partly out of frame
    aug = Augmentation(camera_prob=1.0, ranges=tight, min_visible=0.5, occlusion_prob=1.0)
    sampler = CaptureSampler(clips, 27, fixed, aug, normalization="person")
    batch = sampler.batch(np.random.default_rng(0), 32)
    x, y = batch["keypoints_2d"], batch["joints_3d"]
    assert x.shape == (32, 27, 17, 2) and y.shape == (32, 27, 17, 3)
    assert torch.isfinite(x).all() and torch.isfinite(y).all()
    assert torch.allclose(y[..., 0, :], torch.zeros(3, dtype=y.dtype))
    # Person normalisation: every window has the same scale whatever the camera.
    spread = (x - x.mean(-2, keepdim=True)).pow(2).sum(-1).mean(-1).sqrt().mean(-1)
    assert torch.allclose(spread, torch.full_like(spread, 0.25), atol=1e-4)
    again = sampler.batch(np.random.default_rng(0), 32)
    assert torch.equal(again["keypoints_2d"], x)


def test_novel_protocol_is_reproducible_and_reports_kinds(cmu_path):
    coll = read_clips(cmu_path).select("val")
    coll.clips = dict(list(coll.clips.items())[:2])
    a = novel_capture(coll, 4, seed=7)
    b = novel_capture(coll, 4, seed=7)
    c = novel_capture(coll, 4, seed=8)
    assert [s.name for s in a] == [s.name for s in b]
    assert all(np.array_equal(x.keypoints_2d, y.keypoints_2d) for x, y in zip(a, b))
    assert not np.allclose(a[0].keypoints_2d, c[0].keypoints_2d)
    assert {s.action for s in a} == set(TEST_KINDS)
    for s in a:
        assert np.isfinite(s.keypoints_2d).all()
        assert len(s) <= 250


@pytest.mark.parametrize(
    "override, match",
    [
        ("data.cameras.height=[4.0, 0.2]", "increasing range"),
        ("data.cameras.distance=[]", "two finite numbers"),
        ("data.cameras.pitch=[.nan, 10]", "finite number"),
        ("data.cameras.focal_ratio=[0.5, .inf]", "finite number"),
        ("data.cameras.image_sizes=[[0, 1080]]", "image_sizes"),
        ("data.cameras.image_sizes=[]", "image_sizes"),
        ("data.cameras.prob=1.5", "data.cameras.prob"),
        ("data.cameras.roll=.nan", "roll"),
        ("model.mlp_ratio=.nan", "mlp_ratio"),
        ("train.lr=1e30", "train.lr"),
        ("train.val_windows=0", "val_windows"),
        ("train.seed=-1", "train.seed"),
        ("model.frames=2000000000", "model.frames"),
        ("model.width=4000000", "model.width"),
        ("diffusion.timesteps=20000000000", "timesteps"),
        ("data.pose.tilt_prob=-0.1", "tilt_prob"),
        ("data.pose.tilt_from=1.0", "tilt_from"),
        ("data.pose.body_scale=[1.2, 0.6]", "body_scale"),
        ("data.pose.mix_prob=1.5", "mix_prob"),
        ("data.normalization=box", "normalization"),
        ("eval.overlap=0.95", "overlap"),
        ("eval.median_2d=4", "median_2d"),
        ("eval.median_2d=33", "median_2d"),
    ],
)
def test_bad_augmentation_settings_fail_at_load(override, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(Config(), [override])


def test_old_configs_naming_the_camera_file_still_load():
    cfg = config_from_dict({"data": {"cameras": "cams.json"}})
    assert cfg.data.camera_file == "cams.json" and not cfg.data.cameras.enabled


@pytest.mark.parametrize("tilt_from", [0.3, 0.5, 0.9])
def test_tilt_curriculum_holds_tilts_back_and_changes_nothing_else(tilt_from):
    """Before ``tilt_from`` of the schedule no window is tilted, after it the sampler draws
    exactly the windows of a sampler without the curriculum (the tilt draw is always made)."""
    clips = [_walk(60), _walk(80)[::-1].copy()]
    plain = CaptureSampler(clips, 27, [], Augmentation(tilt_prob=0.5))
    staged = CaptureSampler(clips, 27, [], Augmentation(tilt_prob=0.5, tilt_from=tilt_from))
    upright = CaptureSampler(clips, 27, [], Augmentation(tilt_prob=0.0))
    rng_seed = int(tilt_from * 100)
    for progress, twin in ((tilt_from - 0.01, upright), (0.0, upright), (tilt_from, plain)):
        for k in range(8):
            got = staged.world_window(np.random.default_rng([rng_seed, k]), progress)
            want = twin.world_window(np.random.default_rng([rng_seed, k]), progress)
            assert np.array_equal(got, want)
    tilted = sum(
        not np.allclose(plain.world_window(np.random.default_rng([rng_seed, k])),
                        upright.world_window(np.random.default_rng([rng_seed, k])))
        for k in range(20)
    )  # fmt: skip
    assert tilted > 0  # the comparison above would be empty if nothing were ever tilted


def _lag_one(e: np.ndarray) -> float:
    e = e - e.mean(0)
    return float((e[1:] * e[:-1]).sum() / (e**2).sum())


@settings(max_examples=8, deadline=None)
@given(frames=st.integers(1, 6), seed=st.integers(0, 1000))
def test_smoothed_jitter_keeps_its_size_and_has_the_moving_average_correlation(frames, seed):
    """Jitter averaged over L frames: same standard deviation, lag-one correlation (L-1)/L."""
    noise = DetectorNoise(jitter_px=3.0, drift_px=0.0, outlier_prob=0.0, jitter_frames=frames)
    zero = np.zeros((4000, 17, 2))
    e = noise.apply(zero, np.random.default_rng(seed), scale=2.0)
    assert abs(e.std() - 6.0) < 0.25
    assert abs(_lag_one(e.reshape(len(e), -1)) - (frames - 1) / frames) < 0.05


@settings(max_examples=8, deadline=None)
@given(hold=st.integers(1, 6), seed=st.integers(0, 1000))
def test_held_outliers_keep_their_share_and_come_in_runs(hold, seed):
    """Outliers held for H frames: about ``outlier_prob`` of the frames still, and an
    outlying frame follows another about (H-1)/H of the time; H = 1 is the white model."""
    noise = DetectorNoise(jitter_px=0.0, drift_px=0.0, outlier_prob=0.04, outlier_px=30.0,
                          outlier_frames=hold)  # fmt: skip
    e = noise.apply(np.zeros((6000, 17, 2)), np.random.default_rng(seed))
    out = (np.abs(e) > 1e-9).any(-1)
    assert abs(out.mean() - 0.04) < 0.012
    follows = (out[1:] & out[:-1]).sum() / out[1:].sum()
    assert abs(follows - (hold - 1) / hold) < 0.1


def test_white_noise_draws_are_unchanged_by_the_time_structure_fields():
    """With jitter_frames = outlier_frames = 1 the draws are those of the white model (so
    noisy evaluations recorded before these fields stay reproducible)."""
    rng = np.random.default_rng(7)
    x = rng.normal(500, 50, (120, 17, 2))
    got = DetectorNoise(jitter_px=2.5, drift_px=3.9, drift_frames=8, outlier_prob=0.055,
                        outlier_px=24.0).apply(x, np.random.default_rng(3), 1.3)  # fmt: skip
    r = np.random.default_rng(3)
    want = x + r.normal(0.0, 2.5 * 1.3, x.shape)
    walk = r.normal(0.0, 1.0, (128, 17, 2))
    kernel = np.ones(8) / np.sqrt(8)
    want = (
        want
        + np.apply_along_axis(lambda v: np.convolve(v, kernel, "valid")[:120], 0, walk) * 3.9 * 1.3
    )
    hit = r.random((120, 17, 1)) < 0.055
    want = want + hit * r.normal(0.0, 24.0 * 1.3, x.shape)
    assert np.array_equal(got, want)
