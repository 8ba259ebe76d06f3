import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from htpose.data.sequences import flip_2d, flip_3d
from htpose.data.temporal import (
    blend_windows,
    cover_starts,
    median_filter_frames,
    resample,
    split_windows,
    window_indices,
)
from htpose.errors import HtposeError
from htpose.skeleton import FLIP_PERM, LEFT_JOINTS, RIGHT_JOINTS


@settings(max_examples=60, deadline=None)
@given(length=st.integers(1, 700), size=st.integers(1, 243))
def test_cover_windows_predict_every_frame_exactly_once(length, size):
    counts = np.zeros(length, int)
    for start in cover_starts(length, size):
        idx = np.arange(start, start + size)
        counts[idx[idx < length]] += 1
    assert (counts == 1).all()


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(1, 300),
    size=st.integers(1, 81),
    overlap=st.sampled_from([0.0, 0.25, 0.5, 0.75, 0.9]),
)
def test_split_then_blend_is_identity(length, size, overlap):
    seq = np.random.default_rng(length).normal(size=(length, 17, 3)).astype(np.float32)
    windows, starts = split_windows(seq, size, overlap)
    assert windows.shape == (len(cover_starts(length, size, overlap)), size, 17, 3)
    np.testing.assert_allclose(blend_windows(windows, starts, length), seq, atol=1e-5)
    if overlap and length >= size:  # overlapping windows stay inside the clip
        assert min(starts) == 0 and max(starts) == length - size


@settings(max_examples=40, deadline=None)
@given(length=st.integers(1, 400), size=st.integers(2, 81), overlap=st.sampled_from([0.5, 0.75]))
def test_overlapping_windows_cover_every_frame(length, size, overlap):
    counts = np.zeros(length, int)
    for start in cover_starts(length, size, overlap):
        idx = np.arange(start, start + size)
        counts[idx[(idx >= 0) & (idx < length)]] += 1
    assert (counts >= 1).all()
    if length >= 2 * size:  # away from the ends, every frame is seen by two windows or more
        assert (counts[size:-size] >= 2).all()


def test_edge_padding_repeats_end_frames():
    idx = window_indices(5, 3, 6)
    assert idx.tolist() == [3, 4, 4, 4, 4, 4]
    assert window_indices(5, -2, 4).tolist() == [0, 0, 0, 1]


def test_resample_120_to_50_hz_linear_motion():
    t = np.arange(121) / 120.0  # one second
    seq = np.stack([t, 2 * t, -t], axis=-1)[:, None, :].astype(np.float64)
    out = resample(seq, 120, 50)
    assert out.shape == (51, 1, 3)
    expected = np.arange(51) / 50.0
    assert np.allclose(out[:, 0, 0], expected)
    assert np.allclose(out[:, 0, 1], 2 * expected)


def test_resample_same_rate_is_copy_and_rejects_bad_rates():
    seq = np.ones((4, 17, 3))
    assert np.array_equal(resample(seq, 50, 50), seq)
    with pytest.raises(ValueError):
        resample(seq, 0, 50)


def test_flip_twice_is_identity_and_swaps_sides():
    rng = np.random.default_rng(0)
    x2 = rng.normal(size=(4, 9, 17, 2))
    x3 = rng.normal(size=(4, 9, 17, 3))
    assert np.array_equal(flip_2d(flip_2d(x2)), x2)
    assert np.array_equal(flip_3d(flip_3d(x3)), x3)
    once = flip_3d(x3)
    for left, right in zip(LEFT_JOINTS, RIGHT_JOINTS):
        assert np.array_equal(once[..., left, 0], -x3[..., right, 0])
        assert np.array_equal(once[..., left, 1:], x3[..., right, 1:])
    assert sorted(FLIP_PERM) == list(range(17))


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(1, 200),
    window=st.sampled_from([0, 1, 3, 5, 9, 31]),
    seed=st.integers(0, 10_000),
)
def test_median_filter_keeps_monotonic_motion_and_drops_isolated_spikes(length, window, seed):
    rng = np.random.default_rng(seed)
    # Monotonic in time per coordinate (any speed, stops included): left exactly as it is.
    motion = np.cumsum(rng.exponential(3.0, (length, 17, 2)) * (rng.random((1, 17, 2)) < 0.8), 0)
    motion *= rng.choice([-1.0, 1.0], (1, 17, 2))
    out = median_filter_frames(motion, window)
    assert out.shape == motion.shape and out.dtype == motion.dtype
    np.testing.assert_array_equal(out, motion)
    if window >= 3 and length >= 3:
        # One-frame outliers at least a window apart vanish at that frame (except at the
        # clip's first and last frame, which the edge padding repeats).
        spiky = motion.copy()
        at = np.arange(1 + rng.integers(0, window), length - 1, window + 1)
        if len(at) == 0:
            return
        spiky[at] += rng.choice([-1.0, 1.0], (len(at), 17, 2)) * 500.0
        cleaned = median_filter_frames(spiky, window)
        assert np.abs(cleaned[at] - motion[at]).max() < np.abs(np.diff(motion, axis=0)).max() + 1e-9


@pytest.mark.parametrize("window", [2, 4, -1, 33, 1.5, True])
def test_median_filter_refuses_even_negative_long_or_fractional_windows(window):
    with pytest.raises(HtposeError, match="median_2d"):
        median_filter_frames(np.zeros((10, 17, 2)), window)
