"""Checkpoints: one safetensors file whose header carries the JSON config.

A checkpoint is ``NAME.safetensors``: the denoiser's weights, plus (for training state)
optimizer tensors under ``optim/`` and the RNG state under ``rng/``. Its header metadata
``"htpose"`` holds JSON ``{"format", "config", "meta"}``. Nothing is unpickled on load, and
writes are atomic (temporary file, then rename), so the last good checkpoint survives any
interruption.

A ``torch.save`` / pickle file (another project's ``.pt``/``.bin``) is refused unless the
caller trusts it explicitly; it is then read with ``torch.load(weights_only=True)``, which
rebuilds tensors and plain containers only, and needs a config to say which model it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from htpose.config import Config, config_from_dict
from htpose.errors import CheckpointError, HtposeError
from htpose.io import atomic_path
from htpose.model.denoiser import Denoiser, build_denoiser

FORMAT_VERSION = 1
PRIVATE_PREFIXES = ("optim/", "rng/")


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    config: Config,
    extra_tensors: dict[str, torch.Tensor] | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    """Write weights (+ ``extra_tensors``) with the config and ``meta`` in the header."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    for k, v in (extra_tensors or {}).items():
        tensors[k] = v.detach().contiguous().cpu()
    header = {"format": FORMAT_VERSION, "config": config.to_dict(), "meta": meta or {}}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"htpose": json.dumps(header)})


def _looks_like_pickle(path: Path) -> bool:
    """True for torch.save zips and raw pickles that are not valid safetensors.

    The safetensors header length is a little-endian u64, so its first byte can be
    0x80 too; only a header that does not parse as "length + JSON" counts as pickle.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) == 9:
        length = int.from_bytes(head[:8], "little")
        if 0 < length <= size - 8 and head[8:9] == b"{":
            return False
    return head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and head[1:2] in b"\x02\x03\x04\x05")


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], Config, dict[str, Any]]:
    """Read every tensor, the config and the meta of a checkpoint, validating the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if _looks_like_pickle(path):
        raise CheckpointError(
            f"{path} is a pickle/torch.save file; htpose loads only .safetensors checkpoints"
        )
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = (fh.metadata() or {}).get("htpose")
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # safetensors raises its own error type for foreign bytes
        raise CheckpointError(
            f"{path} is not a readable safetensors file (truncated or foreign): {exc}"
        ) from exc
    if raw is None:
        raise CheckpointError(
            f"{path} is a safetensors file but not an htpose checkpoint (no header)"
        )
    try:
        header = json.loads(raw)
        version = header["format"]
        cfg_values, meta = header["config"], header.get("meta", {})
    # ValueError covers JSONDecodeError and integers past Python's digit limit.
    except (ValueError, RecursionError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: the htpose header is corrupt") from exc
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {version} is not supported by this htpose"
        )
    try:
        config = config_from_dict(cfg_values)
    except HtposeError as exc:
        raise CheckpointError(f"{path}: its config is invalid: {exc}") from exc
    return tensors, config, meta


def model_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The denoiser's weights among a checkpoint's tensors."""
    return {k: v for k, v in tensors.items() if not k.startswith(PRIVATE_PREFIXES)}


def load_weights(
    model: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path
) -> None:
    """Load weights strictly, reporting a mismatch as a one-line :class:`CheckpointError`."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if not (missing or unexpected or wrong):
        for key, value in state.items():
            if not value.is_floating_point():
                raise CheckpointError(
                    f"{source}: weight {key!r} has dtype {value.dtype}, not float"
                )
            if not torch.isfinite(value).all():
                raise CheckpointError(f"{source}: weight {key!r} holds NaN or infinite values")
    if missing or unexpected or wrong:
        if missing:
            detail = f"missing {missing[0]!r}"
        elif unexpected:
            detail = f"unexpected {unexpected[0]!r}"
        else:
            key = wrong[0]
            detail = f"{key!r} is {tuple(state[key].shape)}, the model's {tuple(own[key].shape)}"
        raise CheckpointError(f"{source} does not fit the model config: {detail}")
    model.load_state_dict(state)


def load_grown_weights(
    model: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path
) -> list[str]:
    """Load a smaller model's weights into ``model``; returns the parameters it lacked or
    widened.

    ``model`` may have parameters the checkpoint lacks only where its class names them in
    ``GROWN_PREFIXES``: those are zeroed (those under ``GROWN_KEEP_INIT`` keep their fresh
    values, as they feed a zeroed layer), which by construction leaves the grown model
    computing what the checkpoint did (a ``pose_context`` map added to a trained
    :class:`~htpose.model.denoiser.Denoiser`). Temporal kernels named in ``GROWN_CENTRED``
    may be shorter in the checkpoint: they are centred in zeros (a branch widened to more
    frames). Anything else that does not fit is a :class:`CheckpointError`, as in
    :func:`load_weights`.
    """
    grown = tuple(getattr(model, "GROWN_PREFIXES", ()))
    own = model.state_dict()
    state, widened = dict(state), []
    for key in getattr(model, "GROWN_CENTRED", ()):
        if key in state and key in own and state[key].shape != own[key].shape:
            state[key] = _centre_padded(state[key], own[key].shape, key, source)
            widened.append(key)
    missing = [k for k in own if k not in state]
    outside = [k for k in missing if not k.startswith(grown)]  # every key when grown is ()
    if outside:
        raise CheckpointError(f"{source} does not fit the model config: missing {outside[0]!r}")
    keep = tuple(getattr(model, "GROWN_KEEP_INIT", ()))
    added = {k: own[k] if k.startswith(keep) else torch.zeros_like(own[k]) for k in missing}
    load_weights(model, {**state, **added}, source)
    return missing + widened


def _centre_padded(
    kernel: torch.Tensor, shape: torch.Size, key: str, source: str | Path
) -> torch.Tensor:
    """``kernel`` ``(..., k)`` centred in zeros to ``shape`` ``(..., k + 2 d)``."""
    extra = shape[-1] - kernel.shape[-1]
    if kernel.shape[:-1] != shape[:-1] or extra < 0 or extra % 2:
        raise CheckpointError(
            f"{source}: {key!r} has shape {tuple(kernel.shape)}, which does not grow to "
            f"{tuple(shape)} (a temporal kernel may only widen by the same on both sides)"
        )
    return torch.nn.functional.pad(kernel, (extra // 2, extra // 2))


def load_model(
    path: str | Path,
    device: str | torch.device = "cpu",
    trust_pickle: bool = False,
    config: Config | None = None,
) -> tuple[Denoiser, Config, dict[str, Any]]:
    """Build the denoiser a checkpoint describes and load its weights (eval mode).

    ``trust_pickle`` admits a ``torch.save`` file (read with ``weights_only=True``) whose
    model ``config`` must then be given; it is never needed for htpose's own checkpoints.
    """
    path = Path(path)
    if path.is_file() and _looks_like_pickle(path):
        if not trust_pickle:
            raise CheckpointError(
                f"{path} is a pickle/torch.save file; htpose loads only .safetensors checkpoints "
                "(pass --trust-pickle with --config to read its weights with weights_only=True)"
            )
        if config is None:
            raise CheckpointError(f"{path}: a pickled checkpoint needs --config to describe it")
        state, meta = _read_pickled_state(path), {"source": str(path)}
    else:
        tensors, config, meta = read_checkpoint(path)
        state = model_state(tensors)
    model = build_denoiser(config.model)
    load_weights(model, state, path)
    return model.to(device).eval(), config, meta


def _read_pickled_state(path: Path) -> dict[str, torch.Tensor]:
    """The weights of a trusted ``torch.save`` file: a state dict, or one under a usual key."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise CheckpointError(f"{path} cannot be read with weights_only=True: {exc}") from exc
    if isinstance(obj, dict):
        for key in ("model", "model_pos", "state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if (
        not isinstance(obj, dict)
        or not obj
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    ):
        raise CheckpointError(f"{path} holds no state dict of named tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def uncertainty_scale(meta: dict[str, Any]) -> np.ndarray | None:
    """Per-joint calibration factors ``(17,)`` from a checkpoint's meta, if it has them."""
    entry = meta.get("uncertainty") if isinstance(meta, dict) else None
    if not isinstance(entry, dict):
        return None
    try:
        scale = np.asarray(entry["scale"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return None
    if scale.shape != (17,) or not np.isfinite(scale).all() or (scale < 0).any():
        return None
    return scale


def uncertainty_level(meta: dict[str, Any]) -> float:
    """The probability a calibrated radius was fitted for (``htpose calibrate --level``);
    the default level where the checkpoint does not say or says something unreadable."""
    from htpose.calibration import DEFAULT_LEVEL

    entry = meta.get("uncertainty") if isinstance(meta, dict) else None
    level = entry.get("level") if isinstance(entry, dict) else None
    if isinstance(level, (int, float)) and not isinstance(level, bool) and 0.0 < level < 1.0:
        return float(level)
    return DEFAULT_LEVEL
