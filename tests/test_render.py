"""Rendering a lift result: files are written, have the frames asked for, and show something."""

import numpy as np
import pytest
from PIL import Image

from htpose.cli import main
from htpose.lift import LiftResult


def _result(frames: int = 12, hyps: int = 3, fps: float = 25.0) -> LiftResult:
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.2, (1, 17, 3)) + np.linspace(0, 0.3, frames)[:, None, None]
    base -= base[:, :1]
    hypotheses = base[:, None] + rng.normal(0, 0.02, (frames, hyps, 17, 3))
    kp = 500 + 300 * base[..., :2]
    filled = np.zeros((frames, 17), bool)
    filled[3:6, 13] = True
    return LiftResult(
        base.astype(np.float32),
        hypotheses.astype(np.float32),
        np.abs(rng.normal(0.02, 0.01, (frames, 17))).astype(np.float32),
        np.tile([0.0, 0.0, 5.0], (frames, 1)),
        kp.astype(np.float32),
        np.ones((frames, 17), np.float32),
        filled,
        fps,
        (1000, 1000),
        {},
    )


def _not_blank(image: Image.Image) -> None:
    arr = np.asarray(image.convert("L"), dtype=float)
    assert arr.std() > 10, "the frame looks blank"
    assert (arr < 100).mean() > 0.005  # some dark strokes (skeleton, text)


def test_render_gif_and_uncertainty_plot(tmp_path, capsys):
    result = _result()
    npz = result.save(tmp_path / "r.npz")
    gif, png = tmp_path / "r.gif", tmp_path / "u.png"
    assert main(["render", str(npz), "-o", str(gif), "--uncertainty", str(png)]) == 0
    with Image.open(gif) as im:
        assert im.n_frames == 12 and im.size[0] > 600 and im.size[1] > 250
        _not_blank(im)
        im.seek(6)
        _not_blank(im)
    with Image.open(png) as im:
        _not_blank(im)
    assert not list(tmp_path.glob(".*.tmp*"))


def test_render_subsamples_long_results_and_writes_mp4(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    from htpose.render import render_result

    result = _result(frames=40)
    gif = render_result(result, tmp_path / "r.gif", max_frames=10)
    with Image.open(gif) as im:
        assert im.n_frames == 10
    mp4 = render_result(result, tmp_path / "r.mp4", max_frames=8)
    head = mp4.read_bytes()[:12]
    assert head[4:8] == b"ftyp" and mp4.stat().st_size > 2000


def test_render_rejects_unknown_outputs_and_foreign_files(tmp_path, capsys):
    npz = _result().save(tmp_path / "r.npz")
    assert main(["render", str(npz), "-o", str(tmp_path / "r.avi")]) == 2
    assert "use a .gif or .mp4" in capsys.readouterr().err
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    assert main(["render", str(tmp_path / "other.npz"), "-o", str(tmp_path / "x.gif")]) == 2
    assert "not an htpose lift result" in capsys.readouterr().err


@pytest.mark.parametrize("fps", [12.5, 24, 25, 29.97, 30, 50, 59.94, 60, 100, 120, 240])
def test_gif_playback_runs_at_the_motion_speed(fps):
    from htpose.render import playback

    step, play = playback(fps, 10_000, 10_000, gif=True)
    assert play <= 50  # GIF viewers slow down faster frames
    assert 100 / play == round(100 / play)  # a whole number of hundredths per frame
    real = step / fps  # seconds of motion per drawn frame
    assert abs(real * play - 1) <= 0.05  # played at the motion's speed, within 5 %


def test_a_60_fps_gif_file_has_real_time_delays(tmp_path):
    from htpose.render import render_result

    result = _result(frames=60, fps=60.0)
    gif = render_result(result, tmp_path / "r.gif")
    with Image.open(gif) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
        total_ms = sum(durations)
    assert abs(total_ms - 1000) <= 60  # one second of motion plays in about one second


def test_view_angle_changes_the_picture_and_bad_views_are_refused(tmp_path, capsys):
    npz = _result(frames=6).save(tmp_path / "r.npz")
    frames = {}
    for view in ("12,-70", "80,0"):
        gif = tmp_path / f"v{view.replace(',', '_')}.gif"
        assert main(["render", str(npz), "-o", str(gif), "--view", view]) == 0
        with Image.open(gif) as im:
            im.seek(3)
            frames[view] = np.asarray(im.convert("L"), dtype=float)
    assert np.abs(frames["12,-70"] - frames["80,0"]).mean() > 1.0
    with pytest.raises(SystemExit) as exc:
        main(["render", str(npz), "-o", str(tmp_path / "x.gif"), "--view", "91,0"])
    assert exc.value.code == 2 and "ELEV,AZIM" in capsys.readouterr().err
