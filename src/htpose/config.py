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
from htpose.data.camera import DISTORTION_MODELS
from htpose.errors import ConfigError
from htpose.model.denoiser import ModelConfig


@dataclass
class NoiseConfig:
    """Detector-noise model for "noisy 2D" (see :class:`htpose.data.sequences.DetectorNoise`)."""

    jitter_px: float = 2.5
    drift_px: float = 3.5
    drift_frames: int = 25
    outlier_prob: float = 0.005
    outlier_px: float = 30.0


@dataclass
class DataConfig:
    """Where the training data comes from and how 2D inputs are made from it."""

    clips: str = "../shared/data/cmu/cmu_h36m17.npz"
    cameras: str = "../shared/data/h36m_cameras.json"
    train_split: str = "train"
    test_split: str = "test"
    train_subjects: list[str] = field(default_factory=lambda: ["S1", "S5", "S6", "S7", "S8"])
    test_subjects: list[str] = field(default_factory=lambda: ["S9", "S11"])
    distortion: str = "brown_conrady"
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    # Share of training windows whose 2D gets detector noise (robustness to real detections).
    noise_prob: float = 0.5
    flip_prob: float = 0.5


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
    velocity_weight: float = 0.0  # weight of an MPJVE term added to the MPJPE loss


@dataclass
class TrainConfig:
    """Optimisation. ``lr_schedule`` ``"exponential"`` multiplies the rate by ``lr_decay``
    every ``decay_every`` steps (D3DP: x0.993 per epoch); ``"cosine"`` anneals to zero."""

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


@dataclass
class EvalConfig:
    """Evaluation defaults (the CLI can override each)."""

    batch_windows: int = 16
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
        if d.timesteps < 1 or not 1 <= d.sampling_steps <= d.timesteps:
            raise ConfigError("diffusion.sampling_steps must be in [1, diffusion.timesteps]")
        if d.hypotheses < 1:
            raise ConfigError("diffusion.hypotheses must be at least 1")
        if d.clip_denoised <= 0:
            raise ConfigError("diffusion.clip_denoised must be positive")
        if self.data.distortion not in DISTORTION_MODELS:
            raise ConfigError(f"data.distortion must be one of {DISTORTION_MODELS}")
        for name in ("noise_prob", "flip_prob"):
            if not 0.0 <= getattr(self.data, name) <= 1.0:
                raise ConfigError(f"data.{name} must be in [0, 1]")
        if t.steps < 1 or t.batch_size < 1 or not (t.lr > 0 and math.isfinite(t.lr)):
            raise ConfigError("train.steps, train.batch_size and train.lr must be positive")
        if t.lr_schedule not in ("cosine", "exponential"):
            raise ConfigError("train.lr_schedule must be 'cosine' or 'exponential'")
        for name in ("log_every", "checkpoint_every", "val_every", "decay_every"):
            if getattr(t, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1")
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
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
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


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from nested plain values."""
    if not isinstance(values, dict):
        raise ConfigError("a config must be a mapping at the top level")
    return _build(Config, values, "").validate()


def load_config(path: str | Path) -> Config:
    """Read a YAML config file."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"config file {path} is a folder") from exc
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"config file {path} is not valid YAML: {first}") from exc
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
        node[parts[-1]] = yaml.safe_load(raw)
    return config_from_dict(values)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
