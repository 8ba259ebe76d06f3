"""Pictures of a lift result: the input 2D beside the 3D skeleton, and the uncertainty.

The animation has three panels: the 2D input (filled-in joints drawn hollow), the 3D pose
(upright: camera y down becomes up, depth goes into the picture) on a ground plane at the
lowest foot height, every hypothesis drawn faintly behind the aggregate, and the per-joint
uncertainty over time with a cursor. Axes are fixed over the clip so motion reads as motion.
Left limbs are blue, right limbs red, the spine grey. GIFs need only Pillow; MP4 uses
imageio-ffmpeg's bundled ffmpeg (``pip install htpose[video]``) or an ffmpeg on the PATH.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from htpose.errors import HtposeError
from htpose.io import atomic_path
from htpose.lift import LiftResult
from htpose.skeleton import BONES, JOINT_NAMES, LEFT_JOINTS, RIGHT_JOINTS

LEFT_COLOUR, RIGHT_COLOUR, CENTRE_COLOUR = "#1f77b4", "#d62728", "#555555"


def _bone_colour(child: int) -> str:
    if child in LEFT_JOINTS:
        return LEFT_COLOUR
    if child in RIGHT_JOINTS:
        return RIGHT_COLOUR
    return CENTRE_COLOUR


def _colour_key(fig) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=LEFT_COLOUR, lw=3, label="person's left"),
        Line2D([], [], color=RIGHT_COLOUR, lw=3, label="person's right"),
        Line2D([], [], color=CENTRE_COLOUR, lw=3, label="centre"),
        Line2D([], [], ls="", marker=".", color="#777777", ms=8, label="hypotheses"),
        Line2D([], [], ls="", marker="o", mfc="none", color="orange", label="filled-in joint"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=9, frameon=False)


def _upright(points: np.ndarray) -> np.ndarray:
    """Camera axes (x right, y down, z forward) -> plot axes (x right, depth, up)."""
    return np.stack([points[..., 0], points[..., 2], -points[..., 1]], axis=-1)


GIF_MAX_FPS = 30.0  # GIF delays are whole hundredths of a second; viewers slow faster ones


def playback(fps: float, length: int, max_frames: int, gif: bool) -> tuple[int, float]:
    """Every how many frames to draw, and at what rate to play them, so the animation runs
    at the motion's real speed. GIFs store delays in hundredths of a second and viewers
    stretch delays under 2/100 s to 1/10 s (a 60 fps GIF then plays 6x slow): they get at
    most 30 frames per second, with a step whose delay is (close to) a whole hundredth."""
    step = max(1, int(np.ceil(length / max(1, max_frames))))
    if not gif:
        return step, fps / step
    step = max(step, int(np.ceil(fps / GIF_MAX_FPS)))
    best = step
    for candidate in range(step, step + 6):  # prefer an exact delay if one is near
        delay = 100 * candidate / fps
        if abs(delay - round(delay)) <= 0.05 * delay:
            best = candidate
            break
    delay_cs = max(2, round(100 * best / fps))
    return best, 100.0 / delay_cs


def render_result(
    result: LiftResult,
    path: str | Path,
    max_frames: int = 200,
    fps: float | None = None,
    dpi: int = 80,
    view: tuple[float, float] = (12.0, -70.0),
    video: dict[int, np.ndarray] | None = None,
) -> Path:
    """Animate ``result`` into ``path`` (``.gif`` or ``.mp4``), written atomically.

    Panels: the 2D input (filled-in joints hollow), the 3D skeleton (largest panel; every
    hypothesis as a cloud around it; ``view`` = (elevation, azimuth) in degrees), and each
    joint's uncertainty over time; a colour key for left, right and centre. ``video``
    ``{frame: (h, w, 3) uint8}``: the video's frames (any scale) drawn under the 2D, which
    then spans the whole image; a frame without its own picture shows the nearest earlier one.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import animation

    path = Path(path)
    writer_cls = _writer(path)
    if len(result) == 0:
        raise HtposeError("the result has no frames to render")

    step, play_fps = playback(result.fps, len(result), max_frames, path.suffix.lower() == ".gif")
    idx = np.arange(0, len(result), step)
    play_fps = fps or play_fps
    pose = _upright(result.joints_3d)
    hyps = _upright(result.hypotheses)
    kp = result.keypoints_2d

    fig = plt.figure(figsize=(13, 5.2), dpi=dpi)
    grid_spec = fig.add_gridspec(1, 3, width_ratios=(1.0, 1.7, 1.1))
    ax2d = fig.add_subplot(grid_spec[0])
    ax3d = fig.add_subplot(grid_spec[1], projection="3d")
    axu = fig.add_subplot(grid_spec[2])
    fig.subplots_adjust(left=0.03, right=0.98, bottom=0.16, top=0.88, wspace=0.18)
    picture, shown = _panel_2d(ax2d, result, video)
    _panel_3d(ax3d, pose, hyps, view)
    ax3d.set_title(f"3D: mean of {result.hypotheses.shape[1]} hypotheses (grid 0.5 m)")
    cursor = _panel_uncertainty(axu, result)

    lines2d = [ax2d.plot([], [], color=_bone_colour(c), lw=2)[0] for c, _ in BONES]
    solid2d = ax2d.plot([], [], "o", color="k", ms=3)[0]
    hollow2d = ax2d.plot([], [], "o", mfc="none", color="orange", ms=5)[0]
    lines3d = [ax3d.plot([], [], [], color=_bone_colour(c), lw=2.5)[0] for c, _ in BONES]
    cloud = ax3d.plot([], [], [], ".", color="#777777", ms=2.5, alpha=0.35)[0]
    label = fig.suptitle("")
    _colour_key(fig)

    def draw(i: int):
        filled = result.filled[i]
        if picture is not None:
            k = int(np.searchsorted(shown, i, side="right")) - 1
            picture.set_data(video[shown[max(k, 0)]])
        for line, (c, p) in zip(lines2d, BONES):
            line.set_data(kp[i, [c, p], 0], kp[i, [c, p], 1])
        solid2d.set_data(kp[i, ~filled, 0], kp[i, ~filled, 1])
        hollow2d.set_data(kp[i, filled, 0], kp[i, filled, 1])
        for line, (c, p) in zip(lines3d, BONES):
            line.set_data_3d(pose[i, [c, p], 0], pose[i, [c, p], 1], pose[i, [c, p], 2])
        h = hyps[i].reshape(-1, 3)
        cloud.set_data_3d(h[:, 0], h[:, 1], h[:, 2])
        cursor.set_xdata([i / result.fps, i / result.fps])
        label.set_text(f"frame {i + 1} / {len(result)}   t = {i / result.fps:.2f} s")
        return [*lines2d, solid2d, hollow2d, *lines3d, cloud, cursor, label]

    anim = animation.FuncAnimation(fig, draw, frames=idx, blit=False)
    try:
        with atomic_path(path, keep_suffix=True) as tmp:
            anim.save(str(tmp), writer=writer_cls(fps=play_fps))
    finally:
        plt.close(fig)
    return path


def _writer(path: Path):
    """The matplotlib animation writer for ``path``'s type (ffmpeg for .mp4)."""
    import matplotlib
    from matplotlib import animation

    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise HtposeError(f"cannot render to {path.name!r}; use a .gif or .mp4 file")
    if suffix == ".gif":
        return animation.PillowWriter
    matplotlib.rcParams["animation.ffmpeg_path"] = _ffmpeg()
    return animation.FFMpegWriter


def _panel_2d(ax, result: LiftResult, video: dict[int, np.ndarray] | None) -> tuple:
    """The 2D panel's frame: the video's whole image when given, else the keypoints' extent.
    Returns the image artist (or None) and the sorted frames that have a picture."""
    picture, shown = None, sorted(video) if video else []
    if shown:
        width, height = result.image_size
        picture = ax.imshow(video[shown[0]], extent=(0, width, height, 0))
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        kp = result.keypoints_2d
        lo, hi = np.nanmin(kp, axis=(0, 1)), np.nanmax(kp, axis=(0, 1))
        pad = 0.1 * max(hi - lo) + 1
        ax.set_xlim(lo[0] - pad, hi[0] + pad)
        ax.set_ylim(hi[1] + pad, lo[1] - pad)  # image y points down
    ax.set_aspect("equal")
    ax.set_title("video and detected 2D" if shown else "2D input")
    return picture, shown


def _panel_3d(ax, pose: np.ndarray, hyps: np.ndarray, view: tuple[float, float]) -> None:
    """A cube around every hypothesis, standing on the lowest joint, seen from ``view``."""
    radius = float(np.nanmax(np.abs(hyps))) * 1.05 + 1e-3
    floor = float(np.nanmin(pose[..., 2]))
    ax.set_xlim(-radius, radius)
    ax.set_ylim(-radius, radius)
    ax.set_zlim(floor, floor + 2 * radius)
    ax.set_box_aspect((1, 1, 1), zoom=1.25)
    # No tick labels (they overlap at this size): the panes' grid, every 0.5 m, gives the scale.
    ticks = np.arange(-np.floor(radius / 0.5) * 0.5, radius + 1e-9, 0.5)
    ax.set_xticks(ticks, [""] * len(ticks))
    ax.set_yticks(ticks, [""] * len(ticks))
    ax.set_zticks(floor + ticks - ticks[0], [""] * len(ticks))
    ax.set_xlabel("x", labelpad=-12)
    ax.set_ylabel("depth", labelpad=-12)
    ax.set_zlabel("up", labelpad=-12)
    ax.view_init(elev=view[0], azim=view[1])


def _panel_uncertainty(ax, result: LiftResult):
    """Each joint's uncertainty over time; returns the cursor line that marks the frame."""
    unc_mm = 1000 * result.uncertainty
    for j in range(unc_mm.shape[1]):
        colour = _bone_colour(j)
        ax.plot(np.arange(len(result)) / result.fps, unc_mm[:, j], color=colour, lw=0.8,
                alpha=0.7, label=JOINT_NAMES[j] if j in (0, 13, 16) else None)  # fmt: skip
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"{result.uncertainty_label} (mm)")
    ax.set_title("per-joint uncertainty")
    ax.legend(fontsize=7, loc="upper right")
    return ax.axvline(0, color="k", lw=1)


def plot_uncertainty(result: LiftResult, path: str | Path, dpi: int = 100) -> Path:
    """A still ``.png`` of every joint's uncertainty over time (a heat map)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(10, 4), dpi=dpi)
    img = ax.imshow(
        1000 * result.uncertainty.T,
        aspect="auto",
        origin="lower",
        extent=(0, len(result) / result.fps, -0.5, len(JOINT_NAMES) - 0.5),
        cmap="magma",
    )
    ax.set_yticks(range(len(JOINT_NAMES)), JOINT_NAMES, fontsize=7)
    ax.set_xlabel("time (s)")
    fig.colorbar(img, ax=ax, label=f"{result.uncertainty_label} (mm)")
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return path


def _ffmpeg() -> str:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        found = shutil.which("ffmpeg")
        if found:
            return found
    raise HtposeError(
        "MP4 needs ffmpeg: pip install 'htpose[video]' (imageio-ffmpeg), or render a .gif"
    )
