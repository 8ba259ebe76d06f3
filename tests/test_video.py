"""Video input: decoding, person choice and tracking, and `htpose video` end to end.

The tracker is tested with a detector that finds coloured blocks (so the crops, the painting
over of found people and the gates all really run); the end-to-end tests run MediaPipe on
the real Pose2Sim footage and on videos cut, rotated, blanked and damaged from it.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from htpose.errors import DataError
from htpose.video.track import PersonTracker, choose, find_people

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "pose2sim"
CAM01 = SHARED / "cam01.mp4"
HAS_FFMPEG = importlib.util.find_spec("imageio_ffmpeg") is not None
HAS_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None
needs_ffmpeg = pytest.mark.skipif(not HAS_FFMPEG, reason="imageio-ffmpeg not installed")
needs_real_video = pytest.mark.skipif(
    not (HAS_MEDIAPIPE and HAS_FFMPEG and CAM01.exists()),
    reason="needs pip install 'htpose[video]' and ../shared/data/pose2sim",
)

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


class BlockDetector:
    """Finds pure-coloured blocks; one person per call (the biggest block), like MediaPipe."""

    layout = "coco17"
    single_person = True

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        self.calls += 1
        found = []
        for colour in COLOURS:
            mask = (image == np.array(colour, np.uint8)).all(axis=-1)
            if mask.sum() < 16:
                continue
            ys, xs = np.nonzero(mask)
            x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
            gx, gy = np.meshgrid(np.linspace(x0, x1, 4), np.linspace(y0, y1, 5))
            pts = np.stack([gx.ravel()[:17], gy.ravel()[:17], np.ones(17)], axis=1)
            found.append((mask.sum(), pts))
        found.sort(key=lambda f: -f[0])
        return [p for _, p in found[:1]]

    def close(self) -> None:
        pass


def scene(blocks: dict[int, tuple[int, int, int]], size=(240, 320)) -> np.ndarray:
    """A grey image with block ``colour index -> (x, y, half-size)``."""
    img = np.full((*size, 3), 90, np.uint8)
    for colour, (x, y, half) in blocks.items():
        img[max(0, y - 2 * half) : y + 2 * half, max(0, x - half) : x + half] = COLOURS[colour]
    return img


def centre(person: np.ndarray) -> np.ndarray:
    return person[:, :2].mean(axis=0)


def test_find_people_paints_over_each_person_found():
    img = scene({0: (60, 120, 20), 1: (160, 120, 12), 2: (270, 120, 8)})
    people = find_people(BlockDetector(), img, most=4)
    assert len(people) == 3
    xs = sorted(round(centre(p)[0]) for p in people)
    assert xs == pytest.approx([60, 160, 270], abs=2)
    assert len(find_people(BlockDetector(), img, most=2)) == 2


@pytest.mark.parametrize(
    ("rule", "expected_x"), [("largest", 60), ("center", 160), (0, 60), (1, 160), (2, 270)]
)
def test_choose_rules(rule, expected_x):
    img = scene({0: (60, 120, 20), 1: (160, 120, 12), 2: (270, 120, 8)})
    people = find_people(BlockDetector(), img, most=4)
    pick = choose(people, rule, 320, 240)
    assert centre(people[pick])[0] == pytest.approx(expected_x, abs=2)
    assert choose(people, 3, 320, 240) is None


def test_tracker_follows_its_person_past_a_bigger_one_and_through_an_absence():
    rng = np.random.default_rng(3)
    det = BlockDetector()
    tracker = PersonTracker(det, rule=1)  # the middle of three, smaller than the first
    xs = []
    for i in range(30):
        followed = (100 + 4 * i + int(rng.integers(-2, 3)), 120, 12)
        blocks = {0: (60 + 3 * i, 110, 22), 2: (290 - i, 130, 8)}
        if not 12 <= i < 16:  # the person leaves the picture for four frames
            blocks[1] = followed
        person = tracker(scene(blocks))
        if 12 <= i < 16:
            assert person is None
        else:
            assert person is not None
            xs.append((centre(person)[0], followed[0]))
    got, want = np.array(xs).T
    np.testing.assert_allclose(got, want, atol=4)  # the grid of points is off-centre by ~1 px
    # Tracked frames cost one detector call on a crop, not a full search.
    assert det.calls < 30 * 2 + 4 * 4


def test_tracker_refuses_a_jump_to_someone_else():
    tracker = PersonTracker(BlockDetector(), rule="largest")
    assert tracker(scene({0: (80, 120, 20)})) is not None
    # Our person is gone; another appears far away: not them.
    assert tracker(scene({1: (290, 120, 20)})) is None


# ---- decoding ----


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    import imageio_ffmpeg

    h, w = frames[0].shape[:2]
    gen = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, macro_block_size=1,
                                      output_params=["-g", "5"])  # fmt: skip
    gen.send(None)
    for f in frames:
        gen.send(np.ascontiguousarray(f))
    gen.close()
    return path


def _ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args],
                   check=True)  # fmt: skip


@needs_ffmpeg
def test_decode_sizes_rates_rotation_and_damage(tmp_path):
    from htpose.video.decode import frames, probe

    rng = np.random.default_rng(0)
    clip = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(20)]
    path = _write_video(tmp_path / "a.mp4", clip, fps=12.5)
    info = probe(path)
    assert (info.width, info.height, info.fps) == (64, 48, 12.5)
    assert sum(1 for _ in frames(info)) == 20
    # A phone's rotation flag: frames come out upright, size swapped.
    _ffmpeg("-display_rotation", "90", "-i", str(path), "-c", "copy", str(tmp_path / "r.mp4"))
    rot = probe(tmp_path / "r.mp4")
    assert (rot.width, rot.height) == (48, 64)
    assert all(f.shape == (64, 48, 3) for f in frames(rot))
    # A transport stream cut in the middle: the frames before the cut, no exception.
    _ffmpeg("-i", str(path), "-c:v", "libx264", "-g", "2", str(tmp_path / "a.ts"))
    data = (tmp_path / "a.ts").read_bytes()
    (tmp_path / "cut.ts").write_bytes(data[: len(data) // 2])
    got = sum(1 for _ in frames(probe(tmp_path / "cut.ts")))
    assert 1 <= got < 20
    (tmp_path / "text.mp4").write_text("not a video\n" * 10)
    with pytest.raises(DataError, match="not a video"):
        probe(tmp_path / "text.mp4")


# ---- end to end on real footage ----


def _htpose(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    fast = ["--hypotheses", "1", "--steps", "1", "--no-flip", "--no-progress"]
    return subprocess.run([sys.executable, "-m", "htpose", *args, *fast], cwd=cwd,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def _load(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@needs_real_video
def test_video_follows_the_chosen_person_on_real_footage(tmp_path):
    pelvis_x = []
    for person in ("0", "1"):
        out = tmp_path / f"p{person}.npz"
        r = _htpose("video", str(CAM01), "-o", str(out), "--person", person, "--max-frames",
                    "6", "--save-2d", str(tmp_path / f"k{person}.npz"), cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stderr
        res = _load(out)
        assert res["joints_3d"].shape == (6, 17, 3) and np.isfinite(res["joints_3d"]).all()
        assert tuple(res["image_size"]) == (1088, 1920)
        kp = res["keypoints_2d"]
        assert ((kp >= -50) & (kp <= np.array([1138, 1970]))).all()
        pelvis_x.append(kp[:, 0, 0].mean())
        # The saved 2D lifts again with `htpose lift`.
        r = _htpose("lift", str(tmp_path / f"k{person}.npz"), "-o", str(tmp_path / "again.npz"),
                    cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stderr
    assert pelvis_x[1] - pelvis_x[0] > 150  # two different people, left one first


@needs_real_video
def test_video_rotated_blanked_single_frame_and_hostile(tmp_path):
    import imageio_ffmpeg

    # Rotated phone video (a 0.2 s piece, half size for speed).
    small = tmp_path / "small.mp4"
    _ffmpeg("-i", str(CAM01), "-t", "0.2", "-vf", "scale=544:960", str(small))
    _ffmpeg("-display_rotation", "90", "-i", str(small), "-c", "copy", str(tmp_path / "rot.mp4"))
    r = _htpose("video", str(tmp_path / "rot.mp4"), "-o", str(tmp_path / "rot.npz"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = _load(tmp_path / "rot.npz")
    assert tuple(res["image_size"]) == (960, 544)
    # The person leaves: frames 3-5 black. Flagged, filled, warned, still a result.
    gen = imageio_ffmpeg.read_frames(str(small))
    meta = next(gen)
    w, h = meta["size"]
    clip = [np.frombuffer(b, np.uint8).reshape(h, w, 3).copy() for b in gen]
    for i in (3, 4, 5):
        clip[i][:] = 0
    _write_video(tmp_path / "gap.mp4", clip, fps=60)
    r = _htpose("video", str(tmp_path / "gap.mp4"), "-o", str(tmp_path / "gap.npz"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "not found in 3 of" in r.stderr
    res = _load(tmp_path / "gap.npz")
    assert res["filled"][3:6].all() and not res["filled"][[0, 1, 7, 8]].all()
    # One frame.
    _write_video(tmp_path / "one.mp4", clip[:1], fps=30)
    r = _htpose("video", str(tmp_path / "one.mp4"), "-o", str(tmp_path / "one.npz"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert _load(tmp_path / "one.npz")["joints_3d"].shape == (1, 17, 3)
    # No person, and not a video: one line, exit 2, nothing written.
    _write_video(tmp_path / "empty.mp4", [np.full((96, 64, 3), 120, np.uint8)] * 4, fps=30)
    (tmp_path / "fake.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    for name, message in (("empty.mp4", "no person"), ("fake.mp4", "not a video")):
        out = tmp_path / f"{name}.npz"
        r = _htpose("video", str(tmp_path / name), "-o", str(out), "--render",
                    str(tmp_path / f"{name}.gif"), cwd=tmp_path)  # fmt: skip
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("htpose: error:") and message in lines[0]
        assert not out.exists() and not (tmp_path / f"{name}.gif").exists()
