"""Dataclass configuration, read from and written to YAML files in ``configs/``.

Unknown keys and wrong types are errors at load time (one line each), so a typo never
silently trains the wrong model. Relative paths are taken from the working directory.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from htpose.aggregation import AGGREGATIONS
from htpose.data.camera import DISTORTION_MODELS, NORMALIZATIONS
from htpose.data.temporal import check_median_window
from htpose.data.virtual_cameras import CameraRanges
from htpose.errors import ConfigError, HtposeError
from htpose.io import read_text
from htpose.model.denoiser import ModelConfig

MAX_HYPOTHESES = 1000


@dataclass
class NoiseConfig:
    """Detector-noise model for "noisy 2D" (see :class:`htpose.data.sequences.DetectorNoise`)."""

    jitter_px: float = 2.5
    drift_px: float = 3.5
    drift_frames: int = 25
    outlier_prob: float = 0.005
    outlier_px: float = 30.0
    jitter_frames: int = 1
    outlier_frames: int = 1


@dataclass
class CameraAugConfig:
    """Random virtual cameras for training (``data.cameras``).

    With ``enabled``, a share ``prob`` of the training windows is seen through a camera drawn
    here, the rest through the Human3.6M training cameras. The distributions (see
    :func:`htpose.data.virtual_cameras.draw_camera`): horizontal distance log-uniform in
    ``distance`` m, any direction around the person; camera height uniform in ``height`` m
    above the floor; aimed at the chest, then turned by up to ``offcentre`` of the half field
    of view so the person is often off-centre; pitch of the optical axis in ``pitch`` degrees
    (redrawn outside it); roll uniform within +-``roll`` degrees; focal length log-uniform in
    ``focal_ratio`` x the image width; image size uniform over ``image_sizes`` (width, height:
    landscape, portrait, square); with probability ``distortion_prob`` radial distortion k1
    uniform in ``k1`` (k2 = -k1/4). Joints outside the image are missing, and filled in as
    ``htpose lift`` fills missing joints; a draw keeping under ``min_visible`` of the
    window's joints in view, or losing a joint in every frame, is redrawn.
    """

    enabled: bool = False
    prob: float = 0.75
    height: list[float] = field(default_factory=lambda: [0.2, 4.0])
    distance: list[float] = field(default_factory=lambda: [2.0, 20.0])
    pitch: list[float] = field(default_factory=lambda: [-45.0, 30.0])
    roll: float = 10.0
    focal_ratio: list[float] = field(default_factory=lambda: [0.5, 4.0])
    image_sizes: list[list[int]] = field(
        default_factory=lambda: [[1920, 1080], [1080, 1920], [1280, 720], [640, 480], [1000, 1000]]
    )
    offcentre: float = 0.5
    distortion_prob: float = 0.3
    k1: list[float] = field(default_factory=lambda: [-0.3, 0.1])
    min_visible: float = 0.7

    def ranges(self) -> CameraRanges:
        return CameraRanges(
            height=tuple(self.height),
            distance=tuple(self.distance),
            pitch=tuple(self.pitch),
            roll=self.roll,
            focal_ratio=tuple(self.focal_ratio),
            image_sizes=tuple((int(w), int(h)) for w, h in self.image_sizes),
            offcentre=self.offcentre,
            distortion_prob=self.distortion_prob,
            k1=tuple(self.k1),
        )

    def validate(self) -> None:
        where = "data.cameras"
        ranges = {
            "height": (0.0, 100.0), "distance": (0.5, 1000.0), "pitch": (-89.0, 89.0),
            "focal_ratio": (0.05, 50.0), "k1": (-1.0, 1.0),
        }  # fmt: skip
        for name, (lo, hi) in ranges.items():
            value = getattr(self, name)
            if len(value) != 2 or not all(math.isfinite(v) for v in value):
                raise ConfigError(f"{where}.{name} must be two finite numbers [low, high]")
            if not lo <= value[0] <= value[1] <= hi:
                raise ConfigError(
                    f"{where}.{name} must be an increasing range within [{lo}, {hi}], got {value}"
                )
        for name, hi in (("roll", 45.0), ("offcentre", 1.0)):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= hi):
                raise ConfigError(f"{where}.{name} must be in [0, {hi}], got {value}")
        for name in ("prob", "distortion_prob", "min_visible"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{where}.{name} must be in [0, 1]")
        if not self.image_sizes:
            raise ConfigError(f"{where}.image_sizes must list at least one [width, height]")
        for size in self.image_sizes:
            if len(size) != 2 or not all(16 <= v <= 100_000 for v in size):
                raise ConfigError(
                    f"{where}.image_sizes: {size} is not a [width, height] of 16 to 100000 px"
                )


@dataclass
class PoseAugConfig:
    """Pose augmentation of training windows (``data.pose``, see :mod:`htpose.data.augment`).

    ``tilt_prob``: share of windows rotated about a horizontal axis by up to ``tilt_max``
    degrees (uniform; 90 is lying down, 180 upside down); ``tilt_from``: share of
    ``train.steps`` before which no window is tilted (a curriculum: upright bodies first, as
    short runs paid for early tilts on upright ones; 0 tilts from the first step);
    ``scale_prob``: share whose bones are scaled by a body factor uniform in ``body_scale``
    times ``1 +- bone_jitter`` per bone (left and right alike); ``mix_prob``: share whose
    arms or legs (even odds) move as those of another random window of the training data,
    relative to the torso, with the window's own bone lengths (motions the recordings never
    paired; :func:`htpose.data.augment.mix_parts`). Mirroring is ``data.flip_prob``.
    """

    tilt_prob: float = 0.0
    tilt_max: float = 180.0
    tilt_from: float = 0.0
    scale_prob: float = 0.0
    body_scale: list[float] = field(default_factory=lambda: [0.6, 1.15])
    bone_jitter: float = 0.08
    mix_prob: float = 0.0

    def validate(self) -> None:
        for name in ("tilt_prob", "scale_prob", "mix_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"data.pose.{name} must be in [0, 1]")
        if not 0.0 <= self.tilt_max <= 180.0:
            raise ConfigError("data.pose.tilt_max must be in [0, 180] degrees")
        if not 0.0 <= self.tilt_from < 1.0:
            raise ConfigError("data.pose.tilt_from must be in [0, 1) (a share of train.steps)")
        lo_hi = self.body_scale
        if len(lo_hi) != 2 or not 0.2 <= lo_hi[0] <= lo_hi[1] <= 3.0:
            raise ConfigError("data.pose.body_scale must be [low, high] within [0.2, 3]")
        if not 0.0 <= self.bone_jitter < 0.5:
            raise ConfigError("data.pose.bone_jitter must be in [0, 0.5)")


@dataclass
class DataConfig:
    """Where the training data comes from and how 2D inputs are made from it.

    ``normalization`` is how pixels become the model's input (see
    :func:`htpose.data.camera.normalize_keypoints`): ``"screen"`` (the field's standard,
    divided by the image width) or ``"person"`` (per window, centred on the person and scaled
    by its size, so every image size, aspect ratio, focal length and distance looks alike).
    Training reads ``train_split``, validation ``val_split``; ``test_split`` is what
    ``htpose evaluate`` reads by default.
    """

    clips: str = "../shared/data/cmu/cmu_h36m17.npz"
    camera_file: str = "../shared/data/h36m_cameras.json"
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    train_subjects: list[str] = field(default_factory=lambda: ["S1", "S5", "S6", "S7", "S8"])
    test_subjects: list[str] = field(default_factory=lambda: ["S9", "S11"])
    distortion: str = "brown_conrady"
    normalization: str = "screen"
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    # Share of training windows whose 2D gets detector noise (robustness to real detections).
    noise_prob: float = 0.5
    flip_prob: float = 0.5
    # Share of training windows where one limb end goes missing for a while (then filled).
    occlusion_prob: float = 0.0
    cameras: CameraAugConfig = field(default_factory=CameraAugConfig)
    pose: PoseAugConfig = field(default_factory=PoseAugConfig)


@dataclass
class DiffusionConfig:
    """Noise schedule, training objective and default sampling settings."""

    timesteps: int = 1000
    schedule: str = "cosine"
    clip_denoised: float = 1.1  # bound on y_0 predictions in metres (D3DP: 1.1 x scale)
    eta: float = 1.0
    sampling_steps: int = 10
    hypotheses: int = 20
    flip_test: bool = True
    # With flip_test: "split" (every second hypothesis sees the mirrored 2D; no extra cost)
    # or "average" (every step averages the mirrored prediction, 2x cost, D3DP). Chosen on
    # val (bundled model, H=20, K=5): 75.3 mm MPJPE both, at half the denoiser calls.
    flip_mode: str = "split"
    velocity_weight: float = 0.0  # weight of an MPJVE term added to the MPJPE loss
    # Share of training windows put at the last timestep (pure noise), the only input a
    # K=1 sampler ever gives the network; the rest are uniform over the timesteps. 0 is
    # DDPM/D3DP's uniform draw. Uniform draws spend most steps on noise levels where y_t
    # nearly gives the answer away (see benchmarks/RESULTS.md, section 4, for the val study).
    high_noise_share: float = 0.0


@dataclass
class TrainConfig:
    """Optimisation. ``lr_schedule`` ``"exponential"`` multiplies the rate by ``lr_decay``
    every ``decay_every`` steps (D3DP: x0.993 per epoch); ``"cosine"`` anneals to zero.

    ``loader_workers``: processes that make the training batches ahead of the step (0: the
    training process makes each when it is due). Each step's batch is seeded by
    ``(seed, step)``, so the run is the same with any number; on a GPU the augmentation on
    the CPU is otherwise what the step waits for.
    """

    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.1
    lr_schedule: str = "cosine"
    lr_decay: float = 0.993
    decay_every: int = 1000
    warmup_steps: int = 100
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500
    val_every: int = 500
    val_windows: int = 64
    loader_workers: int = 0


@dataclass
class EvalConfig:
    """Evaluation and lifting defaults (the CLI can override each).

    ``overlap``: share by which consecutive windows overlap at inference; overlapping
    predictions are blended, weighted towards each window's centre, so no frame is predicted
    only from one side's context (except at a clip's ends). 0 predicts every frame once, at
    half the cost of 0.5.

    ``median_2d``: the 2D is median-filtered over this many model frames (odd; 0 or 1: off)
    before lifting, against a detector's frame-to-frame jitter and one-frame outliers. Off by
    default, chosen on real video over the synthetic noise: under the fitted noise model it
    took `val` from 81.5 to 75.9 mm (5 frames; clean 2D unchanged), but on the real Pose2Sim
    footage it did not help (lift seeds 1-3, MediaPipe tracking: 161.3 -> 164.3-165.1 mm,
    every view a little worse; frame-by-frame MediaPipe: 164.4-164.9 -> 171.3-171.7), so the
    synthetic noise's white jitter flatters it (benchmarks/RESULTS.md, section 4).
    """

    batch_windows: int = 16
    overlap: float = 0.0
    median_2d: int = 0
    aggregations: list[str] = field(default_factory=lambda: ["mean", "jpma", "pbest", "jbest"])


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    name: str = "htpose"

    def validate(self) -> Config:
        self.model.validate()
        d, t = self.diffusion, self.train
        if d.schedule not in ("cosine", "linear"):
            raise ConfigError(
                f"diffusion.schedule must be 'cosine' or 'linear', got {d.schedule!r}"
            )
        if not 1 <= d.timesteps <= 100_000:
            raise ConfigError(f"diffusion.timesteps must be in [1, 100000], got {d.timesteps}")
        if not 1 <= d.sampling_steps <= d.timesteps:
            raise ConfigError("diffusion.sampling_steps must be in [1, diffusion.timesteps]")
        if not 1 <= d.hypotheses <= MAX_HYPOTHESES:
            raise ConfigError(f"diffusion.hypotheses must be in [1, {MAX_HYPOTHESES}]")
        if not 0 < d.clip_denoised <= 100:
            raise ConfigError("diffusion.clip_denoised must be in (0, 100] metres")
        if not 0 <= d.eta <= 1 or d.velocity_weight < 0:
            raise ConfigError("diffusion.eta must be in [0, 1] and velocity_weight >= 0")
        if not 0 <= d.high_noise_share <= 1:
            raise ConfigError(
                f"diffusion.high_noise_share must be in [0, 1], got {d.high_noise_share}"
            )
        if self.data.distortion not in DISTORTION_MODELS:
            raise ConfigError(f"data.distortion must be one of {DISTORTION_MODELS}")
        for name in ("noise_prob", "flip_prob", "occlusion_prob"):
            if not 0.0 <= getattr(self.data, name) <= 1.0:
                raise ConfigError(f"data.{name} must be in [0, 1]")
        if self.data.normalization not in NORMALIZATIONS:
            raise ConfigError(f"data.normalization must be one of {NORMALIZATIONS}")
        self.data.cameras.validate()
        self.data.pose.validate()
        if not 1 <= t.steps <= 10**9 or not 1 <= t.batch_size <= 1_000_000:
            raise ConfigError("train.steps and train.batch_size must be positive (and plausible)")
        if not 0 < t.lr <= 10:
            raise ConfigError(f"train.lr must be in (0, 10], got {t.lr}")
        if not 0 <= t.weight_decay <= 10 or t.grad_clip < 0 or not 0 < t.lr_decay <= 1:
            raise ConfigError(
                "train.weight_decay must be in [0, 10], grad_clip >= 0, lr_decay in (0, 1]"
            )
        if t.lr_schedule not in ("cosine", "exponential"):
            raise ConfigError("train.lr_schedule must be 'cosine' or 'exponential'")
        for name in ("log_every", "checkpoint_every", "val_every", "decay_every", "val_windows"):
            if getattr(t, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1")
        if t.warmup_steps < 0 or t.seed < 0:
            raise ConfigError("train.warmup_steps and train.seed must be >= 0")
        if not 0 <= t.loader_workers <= 64:
            raise ConfigError(f"train.loader_workers must be in [0, 64], got {t.loader_workers}")
        n = self.data.noise
        if min(n.jitter_px, n.drift_px, n.outlier_px) < 0 or not 0 <= n.outlier_prob <= 1:
            raise ConfigError("data.noise sizes must be >= 0 and outlier_prob in [0, 1]")
        for key in ("drift_frames", "jitter_frames", "outlier_frames"):
            if not 1 <= getattr(n, key) <= 10_000:
                raise ConfigError(f"data.noise.{key} must be in [1, 10000]")
        if self.diffusion.flip_mode not in ("average", "split"):
            raise ConfigError("diffusion.flip_mode must be 'average' or 'split'")
        if not 0.0 <= self.eval.overlap <= 0.9:
            raise ConfigError("eval.overlap must be in [0, 0.9]")
        try:
            check_median_window(self.eval.median_2d)
        except HtposeError as exc:
            raise ConfigError(f"eval.{exc}") from exc
        if not 1 <= self.eval.batch_windows <= 100_000:
            raise ConfigError("eval.batch_windows must be in [1, 100000]")
        bad = [a for a in self.eval.aggregations if a not in AGGREGATIONS]
        if bad:
            raise ConfigError(f"eval.aggregations: unknown {bad[0]!r}; choose from {AGGREGATIONS}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping")
        return _build(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None):
                return _coerce(value, arg, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        if abs(value) > 2**53:
            raise ConfigError(f"{where} is implausibly large: {value}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    prefix = f"{where}." if where else ""
    unknown = [k for k in values if k not in names]
    if unknown:
        raise ConfigError(f"unknown key {prefix}{unknown[0]} (known: {', '.join(sorted(names))})")
    kwargs = {
        k: _coerce(v, hints[k], f"{where + '.' if where else ''}{k}") for k, v in values.items()
    }
    return cls(**kwargs)


# Older checkpoints and configs carry these (always 0 in the shipped ones).
REMOVED_PRUNING_KEYS = {"sft_topk", "sft_band"}


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from nested plain values.

    Configs written before ``data.cameras`` became the camera-augmentation section named the
    Human3.6M camera file there; such a string is read as ``data.camera_file``. The removed
    SFT sparsity options ``model.pruning.sft_topk`` and ``sft_band`` (measured, they saved
    no time: benchmarks/RESULTS.md, section 2) are dropped when 0 and refused otherwise.
    """
    if not isinstance(values, dict):
        raise ConfigError("a config must be a mapping at the top level")
    pruning = (
        values.get("model", {}).get("pruning") if isinstance(values.get("model"), dict) else None
    )
    if isinstance(pruning, dict) and REMOVED_PRUNING_KEYS & set(pruning):
        for key in sorted(REMOVED_PRUNING_KEYS & set(pruning)):
            if pruning[key] not in (0, None):
                raise ConfigError(
                    f"model.pruning.{key} was removed (it saved no time: SFT attends to every "
                    "kept frame); drop the key"
                )
        pruning = {k: v for k, v in pruning.items() if k not in REMOVED_PRUNING_KEYS}
        values = {**values, "model": {**values["model"], "pruning": pruning}}
    data = values.get("data")
    if isinstance(data, dict) and isinstance(data.get("cameras"), str):
        values = {**values, "data": {**data, "camera_file": data["cameras"]}}
        del values["data"]["cameras"]
    return _build(Config, values, "").validate()


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML keeps the last,
    so an edited config could silently train with the value its author did not mean)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, typing.Hashable):
                continue  # the base class reports unhashable keys
            if key in seen:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice (line {line})"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _first_line(exc: BaseException) -> str:
    """A parser's message cut to its first line (PyYAML adds the offending text below)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_config(path: str | Path) -> Config:
    """Read a YAML config file."""
    path = Path(path)
    try:
        text = read_text(path, "config file")
    except HtposeError as exc:
        raise ConfigError(str(exc)) from exc
    try:
        values = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except RecursionError as exc:
        raise ConfigError(f"config file {path} nests too deeply") from exc
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {_first_line(exc)}") from exc
    if values is None:  # an empty file is more likely a mistake than "all defaults"
        raise ConfigError(f"config file {path} is empty")
    return config_from_dict(values)


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``section.key=value`` overrides (values parsed as YAML) and re-validate."""
    values = cfg.to_dict()
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        node = values
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"override {item!r}: no section {part!r}")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"override {item!r}: unknown key {key}")
        try:
            node[parts[-1]] = yaml.load(raw, Loader=_StrictLoader)  # noqa: S506
        except (yaml.YAMLError, RecursionError, ValueError) as exc:
            raise ConfigError(
                f"override {item!r}: the value is not valid YAML ({_first_line(exc)})"
            ) from exc
    return config_from_dict(values)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
