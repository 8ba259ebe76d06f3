import json

import numpy as np
import pytest

from htpose.data.clips import ClipCollection, read_clips, write_clips
from htpose.data.h36m import (
    KEPT_JOINTS,
    convert_h36m,
    read_h36m_2d,
    read_h36m_3d,
    read_keypoints_2d,
)
from htpose.data.mpi3dhp import TO_H36M, read_3dhp
from htpose.data.sources import detect_format, load_sequences
from htpose.errors import DataError


def _clips(rng, n=2, frames=30):
    return {
        f"train/walk/walk_{i}": rng.normal(size=(frames, 17, 3)).astype(np.float32)
        for i in range(n)
    }


def test_clip_collection_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    coll = ClipCollection(
        _clips(rng), 120.0, {"train": ["train/walk/walk_0"], "test": ["train/walk/walk_1"]}
    )
    write_clips(tmp_path / "c.npz", coll)
    back = read_clips(tmp_path / "c.npz")
    assert back.fps == 120.0 and back.splits == coll.splits
    for k, v in coll.clips.items():
        assert np.array_equal(back.clips[k], v)
    assert back.action_of("train/walk/walk_0") == "walk"
    assert back.action_of("Walking 1") == "Walking"
    assert list(back.select("train").clips) == ["train/walk/walk_0"]
    with pytest.raises(DataError, match="split 'val'"):
        back.select("val")


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"a": np.zeros((10, 16, 3))}, "expected \\(frames, 17, 3\\)"),
        ({"a": np.full((10, 17, 3), np.nan)}, "NaN"),
        ({"a": np.zeros((0, 17, 3))}, "no frames"),
        ({"a": np.array(["x"] * 51).reshape(1, 17, 3)}, "non-numeric"),
        ({}, "no clips"),
    ],
)
def test_malformed_clip_collections_are_rejected(tmp_path, arrays, message):
    path = _write_npz(tmp_path / "bad.npz", **arrays)
    (tmp_path / "bad.json").write_text(json.dumps({"fps": 50}))
    with pytest.raises(DataError, match=message) as err:
        read_clips(path)
    assert "\n" not in str(err.value)


def test_truncated_and_foreign_files_are_rejected(tmp_path):
    rng = np.random.default_rng(1)
    good = tmp_path / "good.npz"
    write_clips(good, ClipCollection(_clips(rng), 50.0))
    data = good.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    (tmp_path / "cut.json").write_text(json.dumps({"fps": 50}))
    with pytest.raises(DataError):
        read_clips(cut)
    foreign = tmp_path / "foreign.npz"
    foreign.write_bytes(b"this is not a zip archive at all")
    with pytest.raises(DataError, match="not a readable .npz"):
        read_clips(foreign)
    with pytest.raises(DataError, match="not an .npz"):
        detect_format(foreign)


def test_pickled_arrays_in_a_clip_collection_are_refused(tmp_path):
    obj = np.empty(1, dtype=object)
    obj[0] = {"evil": 1}
    path = tmp_path / "p.npz"
    np.savez(path, a=obj)
    (tmp_path / "p.json").write_text(json.dumps({"fps": 50}))
    with pytest.raises(DataError, match="pickled"):
        read_clips(path)


def test_metadata_errors(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "c.npz"
    np.savez(path, **_clips(rng))
    with pytest.raises(DataError, match="no frame rate"):
        read_clips(path)
    (tmp_path / "c.json").write_text('{"fps": 50, "splits"')
    with pytest.raises(DataError, match="not valid JSON"):
        read_clips(path)
    (tmp_path / "c.json").write_text(json.dumps({"fps": -3}))
    with pytest.raises(DataError, match="invalid frame rate"):
        read_clips(path)
    (tmp_path / "c.json").write_text(json.dumps({"fps": 50, "splits": {"test": ["nope"]}}))
    with pytest.raises(DataError, match="missing clip 'nope'"):
        read_clips(path)
    (tmp_path / "c.json").write_text(json.dumps({"fps": 50, "joints": ["a"] * 17}))
    with pytest.raises(DataError, match="Human3.6M-17"):
        read_clips(path)
    (tmp_path / "c.json").write_text(json.dumps({"fps": 50}))
    assert read_clips(path, fps=30.0).fps == 30.0


def _h36m_files(tmp_path, frames=40):
    rng = np.random.default_rng(3)
    pos3d = {s: {"Walking 1": rng.normal(size=(frames, 32, 3)) + [0, 0, 1]} for s in ("S1", "S9")}
    pos2d = {
        s: {"Walking 1": [rng.normal(500, 50, size=(frames + 3, 17, 2)) for _ in range(4)]}
        for s in ("S1", "S9")
    }
    p3 = tmp_path / "data_3d_h36m.npz"
    p2 = tmp_path / "data_2d_h36m_cpn.npz"
    np.savez(p3, positions_3d=np.array(pos3d, dtype=object))
    np.savez(p2, positions_2d=np.array(pos2d, dtype=object), metadata=np.array({}, dtype=object))
    return p3, p2, pos3d, pos2d


def test_h36m_readers_need_explicit_pickle_permission(tmp_path):
    p3, p2, pos3d, pos2d = _h36m_files(tmp_path)
    with pytest.raises(DataError, match="--allow-pickle"):
        read_h36m_3d(p3)
    coll = read_h36m_3d(p3, allow_pickle=True)
    assert coll.splits == {"train": ["S1/Walking 1"], "test": ["S9/Walking 1"]}
    assert np.allclose(coll.clips["S9/Walking 1"], pos3d["S9"]["Walking 1"][:, KEPT_JOINTS])
    assert coll.action_of("S9/Walking 1") == "Walking"
    det = read_h36m_2d(p2, allow_pickle=True)
    assert det[("S9/Walking 1", 2)].shape == (43, 17, 2)
    assert detect_format(p3) == "h36m"


def test_h36m_conversion_and_evaluation_sequences(tmp_path, cameras_path):
    p3, p2, pos3d, pos2d = _h36m_files(tmp_path)
    written = convert_h36m(p3, tmp_path / "h36m.npz", p2, allow_pickle=True)
    assert [p.name for p in written] == ["h36m.npz", "h36m.json", "h36m_2d.npz"]
    det = read_keypoints_2d(written[2])
    assert np.allclose(det[("S1/Walking 1", 3)], pos2d["S1"]["Walking 1"][3])
    seqs = load_sequences(written[0], cameras_path, split="test", keypoints_path=written[2])
    assert len(seqs) == 4  # S9 through its own 4 cameras
    assert seqs[1].camera.name.startswith("S9/")
    assert np.allclose(seqs[1].keypoints_2d, pos2d["S9"]["Walking 1"][1][:40])  # cut to the 3D


def test_h36m_reader_rejects_wrong_shapes(tmp_path):
    p = tmp_path / "bad3d.npz"
    np.savez(p, positions_3d=np.array({"S1": {"W": np.zeros((5, 20, 3))}}, dtype=object))
    with pytest.raises(DataError, match="expected \\(frames, 32, 3\\)"):
        read_h36m_3d(p, allow_pickle=True)
    p2 = tmp_path / "bad2d.npz"
    np.savez(p2, positions_2d=np.array({"S1": {"W": [np.zeros((5, 17, 2))] * 3}}, dtype=object))
    with pytest.raises(DataError, match="not 4 views"):
        read_h36m_2d(p2, allow_pickle=True)


def test_3dhp_test_layout(tmp_path):
    rng = np.random.default_rng(4)
    data = {
        "TS1": {
            "data_2d": rng.normal(1000, 100, (30, 17, 2)),
            "data_3d": rng.normal(0, 300, (30, 17, 3)),
            "valid": np.r_[np.ones(25), np.zeros(5)],
        },
        "TS5": {
            "data_2d": rng.normal(900, 100, (20, 17, 2)),
            "data_3d": rng.normal(0, 300, (20, 17, 3)),
            "valid": np.ones(20),
        },
    }
    path = tmp_path / "data_test_3dhp.npz"
    np.savez(path, data=np.array(data, dtype=object))
    assert detect_format(path) == "3dhp"
    with pytest.raises(DataError, match="--allow-pickle"):
        read_3dhp(path)
    seqs = read_3dhp(path, allow_pickle=True)
    assert [s.name for s in seqs] == ["TS1", "TS5"]
    ts1 = seqs[0]
    assert ts1.valid.sum() == 25 and not ts1.camera.calibrated
    assert (seqs[1].camera.width, seqs[1].camera.height) == (1920, 1080)
    raw = data["TS1"]["data_3d"][:, list(TO_H36M)] / 1000
    assert np.allclose(ts1.joints_3d, raw - raw[:, :1], atol=1e-6)
    assert np.allclose(ts1.keypoints_2d[:, 10], data["TS1"]["data_2d"][:, 0], atol=1e-3)  # head top


def test_3dhp_malformed(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(
        path,
        data=np.array(
            {"TS1": {"data_2d": np.zeros((3, 16, 2)), "data_3d": np.zeros((3, 17, 3))}},
            dtype=object,
        ),
    )
    with pytest.raises(DataError, match="shapes"):
        read_3dhp(path, allow_pickle=True)


def test_virtual_capture_of_real_cmu(cmu_path, cameras_path):
    seqs = load_sequences(cmu_path, cameras_path, split="test", subjects=["S9"], views=[0])
    assert len(seqs) == 24
    total = sum(len(s) for s in seqs)
    assert 5800 < total < 5950  # 14,095 frames at 120 Hz -> about 5,873 at 50 Hz
    for s in seqs[:5]:
        assert np.abs(s.joints_3d[:, 0]).max() == 0
        assert (s.root[:, 2] > 2).all()
        inside = (s.keypoints_2d > 0).all() and (s.keypoints_2d[..., 0] < s.camera.width).all()
        assert inside, s.name
        bone = np.linalg.norm(s.joints_3d[:, 2] - s.joints_3d[:, 1], axis=-1)  # thigh stays rigid
        assert bone.std() < 1e-3
