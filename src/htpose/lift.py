"""Lifting users' 2D keypoints to 3D: the job behind ``htpose lift`` and :class:`Lifter`.

Pipeline: fill low-confidence joints by interpolation over time (flagged) -> resample to
the model's 50 Hz -> normalise by the image size -> consecutive windows, a bounded batch of
them at a time -> H hypotheses by DDIM (K steps, test-time flip) -> aggregate (mean, or
JPMA with an assumed camera) -> per-joint uncertainty from the hypotheses' spread ->
least-squares root trajectory -> back to the input frame rate.

Camera: users rarely know their camera, so a pinhole with the principal point at the
image centre and focal length ``focal_ratio x max(width, height)`` is assumed (1.15 by
default, the ratio of the Human3.6M cameras the model was trained through; a phone's main
camera is close to 0.8-1.2). It only sets the depth of the root trajectory and JPMA's
reprojection; pass ``focal`` (pixels) when known.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from htpose import budget
from htpose.aggregation import aggregate_jpma, aggregate_mean, estimate_root
from htpose.calibration import DEFAULT_LEVEL
from htpose.checkpoint import load_model, uncertainty_level, uncertainty_scale
from htpose.config import MAX_HYPOTHESES, Config
from htpose.data.camera import normalize_keypoints
from htpose.data.keypoints import Keypoints2D, fill_missing
from htpose.data.temporal import (
    MODEL_FPS,
    blend_grid,
    check_median_window,
    check_overlap,
    grid_starts,
    interpolate,
    median_filter_frames,
    sample_positions,
    stream_positions,
)
from htpose.diffusion.ddim import DDIMSampler
from htpose.diffusion.pipeline import flip_mode, flip_passes, sample_hypotheses
from htpose.errors import DataError, HtposeError
from htpose.io import atomic_write
from htpose.model.denoiser import Denoiser
from htpose.skeleton import JOINT_NAMES, MAX_STATURE_M, MIN_STATURE_M, NUM_JOINTS, stature

BUNDLED_MODEL = "cmu_htp.safetensors"
MIN_FPS, MAX_FPS = 0.1, 10_000.0  # slower is a slide show; no camera records faster
DEFAULT_FPS = 30.0  # assumed when neither the file nor the caller gives a frame rate
FOCAL_RATIO = 1.15
LIFT_AGGREGATIONS = ("mean", "jpma")


def bundled_model_path() -> Path:
    """The HTP model shipped inside the package (trained on the CMU train split)."""
    return Path(str(resources.files("htpose") / "weights" / BUNDLED_MODEL))


def resample_to(seq: np.ndarray, src_fps: float, dst_fps: float, length: int) -> np.ndarray:
    """Linear resampling of ``(T, ...)`` at ``src_fps`` to exactly ``length`` frames at
    ``dst_fps`` (frame ``i`` at time ``i / dst_fps``, held at the ends)."""
    pos = np.clip(np.arange(length) * (src_fps / dst_fps), 0, len(seq) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(seq) - 1)
    w = (pos - lo).reshape(-1, *([1] * (seq.ndim - 1)))
    return (seq[lo] * (1 - w) + seq[hi] * w).astype(seq.dtype)


@dataclass
class LiftResult:
    """3D motion of one person, at the input's frame rate.

    - ``joints_3d`` ``(T, 17, 3)`` metres, root-relative (pelvis at 0), camera axes (x right,
      y down, z away from the camera);
    - ``hypotheses`` ``(T, H, 17, 3)`` every sampled hypothesis, same frame;
    - ``uncertainty`` ``(T, 17)`` metres: for a calibrated model (``htpose calibrate``) the
      radius around ``joints_3d`` within which the true joint lay 68 % of the time (or the
      ``--level`` it was calibrated for) on the ``val`` split (per-joint factor x the
      hypotheses' spread); otherwise the raw RMS distance of the hypotheses from their mean,
      which understates the error (``info["uncertainty"]`` says which);
    - ``root`` ``(T, 3)`` estimated camera-frame pelvis position (depends on the focal);
    - ``keypoints_2d`` ``(T, 17, 2)`` the input pixels with missing joints filled in,
      ``scores`` ``(T, 17)``, ``filled`` ``(T, 17)`` which joints were filled in;
    - ``fps``, ``image_size`` ``(width, height)``, ``info`` (settings and timings);
    - ``joints_world`` ``(T, 17, 3)`` after :meth:`add_world`: absolute positions, metres,
      z up, floor at 0 (``--world``).
    """

    joints_3d: np.ndarray
    hypotheses: np.ndarray
    uncertainty: np.ndarray
    root: np.ndarray
    keypoints_2d: np.ndarray
    scores: np.ndarray
    filled: np.ndarray
    fps: float
    image_size: tuple[int, int]
    info: dict[str, Any] = field(default_factory=dict)
    joints_world: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.joints_3d)

    @property
    def uncertainty_label(self) -> str:
        """What ``uncertainty`` holds, in words for printouts and axes."""
        if str(self.info.get("uncertainty", "")).startswith("calibrated"):
            level = self.info.get("uncertainty_level", DEFAULT_LEVEL)  # older files lack it
            return f"{round(100 * level)} % radius"
        return "hypothesis spread"

    def add_world(self, up: np.ndarray | None = None) -> np.ndarray:
        """Fill ``joints_world`` ``(T, 17, 3)``: absolute, gravity up (see :mod:`htpose.world`)."""
        from htpose.world import to_world

        self.joints_world, rot = to_world(self.joints_3d, self.root, up)
        self.info["world_from_camera"] = np.round(rot, 6).tolist()
        return self.joints_world

    def arrays(self) -> dict[str, np.ndarray]:
        extra = {} if self.joints_world is None else {"joints_world": self.joints_world}
        return {
            **{k: v.astype(np.float32) for k, v in extra.items()},
            "joints_3d": self.joints_3d.astype(np.float32),
            "hypotheses": self.hypotheses.astype(np.float16),  # half: H x the size of the rest
            "uncertainty": self.uncertainty.astype(np.float32),
            "root": self.root.astype(np.float32),
            "keypoints_2d": self.keypoints_2d.astype(np.float32),
            "scores": self.scores.astype(np.float32),
            "filled": self.filled,
            "fps": np.float64(self.fps),
            "image_size": np.array(self.image_size, np.int64),
            "joint_names": np.array(JOINT_NAMES),
            "info": np.array(json.dumps(self.info)),
        }

    def save(self, path: str | Path) -> Path:
        """Write ``.npz`` (everything), ``.json`` or ``.csv`` (by suffix), atomically."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".npz":
            atomic_write(path, lambda fh: np.savez_compressed(fh, **self.arrays()))
        elif suffix == ".json":
            doc = {
                "fps": self.fps,
                "image_size": list(self.image_size),
                "joint_names": list(JOINT_NAMES),
                "units": "metres, camera axes (x right, y down, z forward), pelvis-relative",
                "info": self.info,
                "frames": [
                    {
                        "joints_3d": np.round(self.joints_3d[i], 5).tolist(),
                        "uncertainty": np.round(self.uncertainty[i], 5).tolist(),
                        "root": np.round(self.root[i], 5).tolist(),
                        "filled": self.filled[i].tolist(),
                    }
                    for i in range(len(self))
                ],
            }
            text = json.dumps(doc)
            atomic_write(path, lambda fh: fh.write(text.encode()))
        elif suffix == ".csv":
            cols = ["frame", "time_s"]
            for name in JOINT_NAMES:
                cols += [f"{name}_x", f"{name}_y", f"{name}_z", f"{name}_uncertainty"]
            cols += ["root_x", "root_y", "root_z"]
            lines = [",".join(cols)]
            for i in range(len(self)):
                row = [str(i), f"{i / self.fps:.5f}"]
                for j in range(NUM_JOINTS):
                    row += [f"{v:.5f}" for v in self.joints_3d[i, j]]
                    row.append(f"{self.uncertainty[i, j]:.5f}")
                row += [f"{v:.5f}" for v in self.root[i]]
                lines.append(",".join(row))
            text = "\n".join(lines) + "\n"
            atomic_write(path, lambda fh: fh.write(text.encode()))
        else:
            raise HtposeError(f"unknown output type {path.suffix!r}; use .npz, .json or .csv")
        return path


def load_result(path: str | Path) -> LiftResult:
    """Read a ``.npz`` written by :meth:`LiftResult.save`."""
    from htpose.io import numeric_array, open_npz, read_npz_array

    path = Path(path)
    with open_npz(path) as archive:
        need = ("joints_3d", "hypotheses", "uncertainty", "root", "keypoints_2d", "fps")
        missing = [k for k in need if k not in archive.files]
        if missing:
            raise DataError(f"{path} is not an htpose lift result (no {missing[0]!r})")
        a = {
            k: numeric_array(read_npz_array(archive, k, path), f"{path}: {k}")
            for k in archive.files
            if k not in ("joint_names", "info")
        }
        info_raw = str(read_npz_array(archive, "info", path)) if "info" in archive.files else "{}"
    t = len(a["joints_3d"]) if a["joints_3d"].ndim else 0
    a.setdefault("image_size", np.array([1000, 1000]))
    shapes = {
        "joints_3d": (t, NUM_JOINTS, 3), "uncertainty": (t, NUM_JOINTS), "root": (t, 3),
        "keypoints_2d": (t, NUM_JOINTS, 2), "scores": (t, NUM_JOINTS),
        "filled": (t, NUM_JOINTS),
    }  # fmt: skip
    for key, shape in shapes.items():  # scores and filled are optional
        if key in a and a[key].shape != shape:
            raise DataError(f"{path}: {key!r} has shape {a[key].shape}, expected {shape}")
    hyps = a["hypotheses"]
    if hyps.ndim != 4 or hyps.shape[0] != t or hyps.shape[2:] != (NUM_JOINTS, 3) or t == 0:
        raise DataError(f"{path}: 'hypotheses' has shape {hyps.shape}")
    if a["fps"].size != 1 or not 0 < float(a["fps"]) <= 1e6:
        raise DataError(f"{path}: 'fps' must be one positive number")
    _check_result_values(a, path)
    try:
        info = json.loads(info_raw)
    except (ValueError, RecursionError):  # foreign or hostile: the info is optional
        info = {}
    return LiftResult(
        a["joints_3d"].astype(np.float32),
        a["hypotheses"].astype(np.float32),
        a["uncertainty"].astype(np.float32),
        a["root"].astype(np.float32),
        a["keypoints_2d"].astype(np.float32),
        a.get("scores", np.ones((t, NUM_JOINTS))).astype(np.float32),
        a.get("filled", np.zeros((t, NUM_JOINTS), bool)).astype(bool),
        float(a["fps"]),
        tuple(int(v) for v in a["image_size"]),
        info,
    )


# What a lift result's values may be: metres for 3D (a body, not a planet), pixels for 2D.
_RESULT_REACH = {"joints_3d": 1e4, "hypotheses": 1e4, "root": 1e4, "uncertainty": 1e4,
                 "keypoints_2d": 1e9}  # fmt: skip


def _check_result_values(a: dict[str, np.ndarray], path: Path) -> None:
    """A lift result holds finite, bounded numbers: what ``htpose render`` can draw without
    overflow."""
    for key, reach in _RESULT_REACH.items():
        values = a[key]
        if not (np.isfinite(values).all() and np.abs(values).max(initial=0) <= reach):
            raise DataError(f"{path}: {key!r} holds non-finite or huge values (beyond {reach:g})")
    if (a["uncertainty"] < 0).any():
        raise DataError(f"{path}: 'uncertainty' holds negative values")
    size = a["image_size"]
    if size.shape != (2,) or not ((size > 0) & (size <= 100_000)).all():
        raise DataError(f"{path}: 'image_size' must be two positive numbers (width, height)")


def _input_fps(given: float | None, from_file: float | None) -> float:
    """The input's frame rate: the caller's, else the file's, else :data:`DEFAULT_FPS`
    (with a warning)."""
    fps = given if given is not None else from_file
    if fps is None:
        warnings.warn(
            f"frame rate unknown; assuming {DEFAULT_FPS:g} fps (pass fps=...)", stacklevel=3
        )
        return DEFAULT_FPS
    return float(fps)


class Lifter:
    """2D keypoint tracks in, 3D motion out.

    >>> lifter = Lifter.from_pretrained()           # the bundled HTP model, offline
    >>> result = lifter(keypoints, image_size=(1920, 1080), fps=30)
    >>> result.joints_3d.shape                      # (T, 17, 3)
    """

    def __init__(
        self,
        model: Denoiser,
        config: Config,
        device: str = "cpu",
        name: str = "",
        uncertainty_scale: np.ndarray | None = None,
        uncertainty_level: float = DEFAULT_LEVEL,
    ):
        self.model = model.to(device).eval()
        self.config = config
        self.device = device
        self.name = name
        self.uncertainty_scale = uncertainty_scale
        self.uncertainty_level = uncertainty_level

    @classmethod
    def from_pretrained(cls, checkpoint: str | Path | None = None, device: str = "cpu") -> Lifter:
        """Load a checkpoint, or the bundled model when none is named."""
        path = Path(checkpoint) if checkpoint else bundled_model_path()
        if checkpoint is None and not path.exists():
            raise HtposeError(f"the bundled model is missing from this installation ({path})")
        model, cfg, meta = load_model(path, device)
        return cls(model, cfg, device, str(path), uncertainty_scale(meta), uncertainty_level(meta))

    def __call__(
        self,
        keypoints: Keypoints2D | np.ndarray,
        image_size: tuple[int, int] | None = None,
        fps: float | None = None,
        scores: np.ndarray | None = None,
        hypotheses: int = 5,
        steps: int | None = None,
        aggregate: str = "mean",
        flip: bool | str = True,
        batch: int = 16,
        seed: int = 0,
        threshold: float = 0.3,
        focal: float | None = None,
        progress: bool = False,
        overlap: float | None = None,
        start_frame: int = 0,
        median_2d: int | None = None,
        body_height: float | None = None,
    ) -> LiftResult:
        """Lift one person's track.

        ``keypoints``: a :class:`Keypoints2D` or an array ``(T, 17, 2|3)`` of pixels in
        Human3.6M-17 order (third channel: score); ``image_size`` ``(width, height)`` in
        pixels (needed unless the keypoints carry it); ``fps`` of the input (default: the
        file's, else 30); ``batch``: windows per model call (bounds the memory); ``overlap``:
        share by which windows overlap (default: the model config's ``eval.overlap``);
        ``start_frame``: where these frames begin in a longer recording. Windows sit on a grid
        fixed to the recording (not to the piece) and each window's noise is seeded by its own
        content, so pieces lifted with their ``start_frame`` give exactly the whole lift's 3D
        except within one window (``model.frames`` model frames) of a cut, where a piece lacks
        the other side's context. ``median_2d``: the running-median window over model frames
        that cleans the 2D of detector jitter and one-frame outliers (default: the model
        config's ``eval.median_2d``; 0 turns it off). ``body_height``: the person's standing
        height in metres, when known: one view cannot tell a small near body from a large
        far one, so the lift gives an adult of about average size unless told; with
        ``body_height`` the result (joints, hypotheses, uncertainty and root alike, which keeps
        its projection) is scaled so that :func:`~htpose.skeleton.stature` matches it (pieces
        lifted with ``start_frame`` are each scaled by their own frames' estimate).
        """
        kp = self._as_keypoints(keypoints, scores)
        width, height = self._image_size(kp, image_size)
        src_fps = _input_fps(fps, kp.fps)
        if steps is None:  # the model's own choice (made on val), one place for it
            steps = self.config.diffusion.sampling_steps
        median_2d = self.config.eval.median_2d if median_2d is None else median_2d
        self._check_settings(
            src_fps, hypotheses, steps, aggregate, batch, threshold, focal, overlap, start_frame,
            median_2d, body_height,
        )  # fmt: skip
        pixels = kp.pixels.astype(np.float64)
        if width is not None and kp.normalized:
            pixels = pixels * np.array([width, height])  # fractions of the image
        filled_px, filled = fill_missing(pixels, kp.scores, threshold)
        _check_in_image(filled_px, width, height)
        tick = time.perf_counter()
        # The length's budget first: its message names the frame rate that caused it.
        first, px50 = self._to_model_frames(filled_px, src_fps, start_frame, hypotheses, median_2d)
        flip, batch = self._plan(hypotheses, flip, batch)
        focal_px = float(focal) if focal else FOCAL_RATIO * max(width, height)
        intr = torch.tensor(
            [focal_px, focal_px, width / 2, height / 2, 0, 0, 0, 0, 0], dtype=torch.float64
        )
        hyps50, agg50, root50 = self._lift_50hz(
            px50, first, width, height, intr, hypotheses, steps, aggregate, flip, batch, seed,
            progress, self.config.eval.overlap if overlap is None else overlap,
        )  # fmt: skip
        hyps, agg, root, radius = self._to_input_frames(
            hyps50, agg50, root50, len(pixels), src_fps, start_frame, first
        )
        body_scale = 1.0 if body_height is None else body_height / max(stature(agg), 1e-6)
        hyps, agg, root, radius = (a * np.float32(body_scale) for a in (hyps, agg, root, radius))
        seconds = time.perf_counter() - tick
        info = self._info(
            hypotheses=hypotheses, steps=steps, aggregate=aggregate, flip=flip, seed=seed,
            input_fps=src_fps, focal_px=focal_px, source=kp.source, seconds=round(seconds, 3),
            frames_per_second=round(len(pixels) / seconds, 2) if seconds > 0 else None,
            filled_joints=int(filled.sum()), median_2d=median_2d, body_height_m=body_height,
            body_scale=round(body_scale, 4),
        )  # fmt: skip
        return LiftResult(
            agg, hyps, radius, root, filled_px.astype(np.float32), kp.scores.astype(np.float32),
            filled, src_fps, (int(width), int(height)), info,
        )  # fmt: skip

    @staticmethod
    def _to_model_frames(
        px: np.ndarray, src_fps: float, start_frame: int, hypotheses: int, median_2d: int
    ) -> tuple[int, np.ndarray]:
        """Filled input pixels ``(T, 17, 2)`` -> the first absolute model frame and the 2D at
        the model's 50 Hz ``(N, 17, 2)``, median-filtered; refuses a length whose hypotheses
        would not fit the memory budget before anything is allocated."""
        first, lo, w = stream_positions(len(px), src_fps, start_frame)
        n50 = len(lo)
        budget.check(
            n50 * hypotheses * NUM_JOINTS * 3 * 4 * 4,
            f"{len(px)} frames at {src_fps:g} fps ({n50} frames at the model's 50 Hz) "
            f"x {hypotheses} hypotheses",
        )
        return first, median_filter_frames(interpolate(px, lo, w), median_2d)

    def _to_input_frames(
        self, hyps50: np.ndarray, agg50: np.ndarray, root50: np.ndarray, count: int,
        src_fps: float, start_frame: int, first: int,
    ) -> tuple[np.ndarray, ...]:  # fmt: skip
        """Model-rate hypotheses ``(N, H, 17, 3)``, aggregate and root at the ``count`` input
        frames (input frame i sits at model frame ``(start + i) * 50 / fps``), pelvis-relative,
        with the uncertainty radius ``(count, 17)``."""
        back_lo, back_w = _model_positions(count, src_fps, start_frame, first, len(hyps50))
        hyps, agg, root = (interpolate(a, back_lo, back_w) for a in (hyps50, agg50, root50))
        hyps = hyps - hyps[..., :1, :]
        agg = agg - agg[..., :1, :]
        spread = np.sqrt(((hyps - hyps.mean(axis=1, keepdims=True)) ** 2).sum(-1).mean(1))
        radius = spread if self.uncertainty_scale is None else spread * self.uncertainty_scale
        return hyps, agg, root, radius

    def _plan(self, hypotheses: int, flip: bool | str, batch: int) -> tuple[str, int]:
        """The flip mode (``True``: the model's default) and the windows per model call
        that fit the memory budget."""
        m = self.config.model
        flip = flip_mode(flip, self.config.diffusion.flip_mode)
        passes = hypotheses * flip_passes(flip)
        return flip, budget.fit_batch(batch, passes, m.frames, m.joints, m.width, m.heads)

    def _info(self, **settings: object) -> dict:
        """The result's ``info``: the model, the settings used, what the uncertainty is."""
        info: dict = {"model": self.name, **settings}
        if self.uncertainty_scale is None:
            info["uncertainty"] = "raw hypothesis spread (not calibrated)"
        else:
            info["uncertainty"] = (
                "calibrated radius: the true joint lies within it about "
                f"{round(100 * self.uncertainty_level)} % of the time on val"
            )
            info["uncertainty_level"] = self.uncertainty_level
        return info

    @torch.no_grad()
    def _lift_50hz(
        self, px: np.ndarray, first: int, width: int, height: int, intr: torch.Tensor,
        hypotheses: int, steps: int, aggregate: str, flip: str, batch: int, seed: int,
        progress: bool, overlap: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """Model-rate pixels ``(N, 17, 2)`` of absolute model frames ``first..first+N-1`` ->
        hypotheses ``(N, H, 17, 3)``, aggregate ``(N, 17, 3)`` and root ``(N, 3)``."""
        cfg = self.config
        frames = cfg.model.frames
        last = first + len(px) - 1
        starts = grid_starts(first, last, frames, overlap)
        pix_windows = np.stack(
            [px[np.clip(np.arange(s, s + frames), first, last) - first] for s in starts]
        ).astype(np.float32)
        windows = normalize_keypoints(
            torch.from_numpy(pix_windows), width, height, cfg.data.normalization
        ).numpy()
        sampler = DDIMSampler.from_config(cfg.diffusion, steps)
        n = len(windows)
        hyps = np.zeros((n, frames, hypotheses, NUM_JOINTS, 3), np.float32)
        agg = np.zeros((n, frames, NUM_JOINTS, 3), np.float32)
        root = np.zeros((n, frames, 3), np.float32)
        bar = tqdm(total=n, desc="lift", unit="window", disable=not progress or n < 2)
        for i in range(0, n, batch):
            x = torch.from_numpy(windows[i : i + batch]).to(self.device)
            gens = [self._window_generator(seed, w) for w in windows[i : i + batch]]
            h = sample_hypotheses(self.model, sampler, x, hypotheses, flip, gens).cpu()
            pix = torch.from_numpy(pix_windows[i : i + batch])
            mean = aggregate_mean(h)
            r = estimate_root(mean.double(), pix.double(), intr).float()
            if aggregate == "jpma":
                out = aggregate_jpma(h.double(), pix.double(), intr.expand(len(h), 9), r.double())
            else:
                out = mean
            hyps[i : i + batch] = h.permute(0, 2, 1, 3, 4).numpy()
            agg[i : i + batch] = out.float().numpy()
            root[i : i + batch] = r.numpy()
            bar.update(len(x))
        bar.close()
        return tuple(blend_grid(a, starts, first, last) for a in (hyps, agg, root))

    def _window_generator(self, seed: int, window: np.ndarray) -> torch.Generator:
        """A generator seeded by ``seed`` and the window's own 2D: a window gets the same
        noise wherever it sits in a clip and whatever else is in its batch, so chunked,
        batched and whole-clip lifting agree."""
        digest = hashlib.blake2b(np.ascontiguousarray(window).tobytes(), digest_size=8)
        digest.update(str(seed).encode())
        value = int.from_bytes(digest.digest(), "little") & ((1 << 63) - 1)
        return torch.Generator(device=self.device).manual_seed(value)

    def _as_keypoints(self, keypoints: Keypoints2D | np.ndarray, scores) -> Keypoints2D:
        if isinstance(keypoints, Keypoints2D):
            return keypoints
        arr = np.asarray(keypoints, dtype=np.float64)
        if arr.ndim != 3 or arr.shape[1] != NUM_JOINTS or arr.shape[2] not in (2, 3):
            raise DataError(
                f"keypoints have shape {arr.shape}; expected (frames, 17, 2) or (frames, 17, 3) "
                "in Human3.6M-17 order"
            )
        if len(arr) == 0:
            raise DataError("keypoints have no frames")
        sc = arr[..., 2] if arr.shape[2] == 3 else np.ones(arr.shape[:2])
        if scores is not None:
            sc = np.asarray(scores, dtype=np.float64)
            if sc.shape != arr.shape[:2]:
                raise DataError(f"scores have shape {sc.shape}; expected {arr.shape[:2]}")
        sc = np.where(np.isfinite(sc), np.clip(sc, 0, 1), 0.0)
        xy = arr[..., :2].copy()
        sc[~np.isfinite(xy).all(-1)] = 0.0
        xy[sc <= 0] = np.nan
        return Keypoints2D(xy, sc, None, None, None, "h36m17")

    def _check_settings(
        self, fps: float, hypotheses: int, steps: int, aggregate: str, batch: int,
        threshold: float, focal: float | None, overlap: float | None, start_frame: int,
        median_2d: int, body_height: float | None,
    ) -> None:  # fmt: skip
        """Every number a caller passes, checked before any work (one-line errors)."""
        check_median_window(median_2d)
        if body_height is not None and not MIN_STATURE_M <= body_height <= MAX_STATURE_M:
            raise HtposeError(
                f"body height must be in [{MIN_STATURE_M:g}, {MAX_STATURE_M:g}] metres, "
                f"got {body_height}"
            )
        if not MIN_FPS <= fps <= MAX_FPS:
            raise HtposeError(f"frame rate {fps:g} is not in [{MIN_FPS:g}, {MAX_FPS:g}] fps")
        if not 1 <= hypotheses <= MAX_HYPOTHESES:
            raise HtposeError(f"hypotheses must be in [1, {MAX_HYPOTHESES}], got {hypotheses}")
        if not 1 <= steps <= self.config.diffusion.timesteps:
            raise HtposeError(
                f"steps must be in [1, {self.config.diffusion.timesteps}], got {steps}"
            )
        if aggregate not in LIFT_AGGREGATIONS:
            raise HtposeError(
                f"aggregation {aggregate!r} is not available without ground truth; "
                f"choose from {', '.join(LIFT_AGGREGATIONS)}"
            )
        if not 1 <= batch <= 100_000:
            raise HtposeError(f"batch must be in [1, 100000], got {batch}")
        if not 0.0 <= threshold <= 1.0:
            raise HtposeError(f"threshold must be in [0, 1], got {threshold}")
        if focal is not None and not 0 < focal <= 1e6:
            raise HtposeError(f"focal length must be in (0, 1e6] pixels, got {focal}")
        if overlap is not None:
            check_overlap(overlap)
        if not 0 <= start_frame <= 10**12:
            raise HtposeError(f"start_frame must be in [0, 1e12], got {start_frame}")

    @staticmethod
    def _image_size(kp: Keypoints2D, size: tuple[int, int] | None) -> tuple[int, int]:
        if size is not None:
            w, h = size
        elif kp.width and kp.height:
            w, h = kp.width, kp.height
        elif kp.normalized:
            raise DataError(
                f"these keypoints ({kp.source}) are fractions of the image; give the image "
                "size (--width and --height)"
            )
        else:
            raise DataError("the image size is not in the file; give it (--width and --height)")
        if not (0 < w <= 100_000 and 0 < h <= 100_000):
            raise DataError(f"image size {w}x{h} is not plausible")
        return int(w), int(h)


def _model_positions(
    length: int, fps: float, start_frame: int, first: int, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``length`` input frames falls among ``count`` model frames that begin at
    absolute model frame ``first``."""
    absolute = (start_frame + np.arange(length)) * (MODEL_FPS / fps)
    return sample_positions(absolute, first, count)


def _check_in_image(pixels: np.ndarray, width: int, height: int) -> None:
    """Keypoints far outside the image mean wrong units or a wrong image size: refuse them
    rather than lift nonsense (a joint may leave the frame, not by ten frame widths)."""
    reach = 10 * max(width, height)
    bad = np.abs(pixels - np.array([width, height]) / 2) > reach
    if bad.any():
        t, j, _ = np.argwhere(bad)[0]
        raise DataError(
            f"keypoint {JOINT_NAMES[j]!r} of frame {t} lies at {pixels[t, j].tolist()}, far "
            f"outside the {width}x{height} image; wrong units (normalised?) or image size?"
        )
