"""ONNX export of the denoiser: one denoising step, ``(keypoints_2d, y_t, t) -> y_0``.

The exported graph takes normalised 2D windows ``(N, F, 17, 2)``, noisy poses
``(N, F, 17, 3)`` and integer timesteps ``(N,)`` (N dynamic) and includes the condition
embedding (and, for HTP, TCEP's frame choice), so a runtime only has to run the DDIM loop
around it (see :class:`htpose.diffusion.ddim.DDIMSampler`). The TorchScript-based exporter is
used: the dynamo exporter does not yet convert every op of the pruned model. Nothing here
uses FFT/DCT ops. Checked against PyTorch with onnxruntime when it is installed.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from htpose.errors import HtposeError
from htpose.io import atomic_path
from htpose.model.denoiser import Denoiser
from htpose.train import Predictor

INPUT_NAMES = ("keypoints_2d", "y_t", "t")


def example_inputs(model: Denoiser, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Plausible inputs of the step for tracing and checking."""
    gen = torch.Generator().manual_seed(seed)
    f, j = model.cfg.frames, model.cfg.joints
    x = 0.3 * torch.randn(batch, f, j, 2, generator=gen)
    y = 0.3 * torch.randn(batch, f, j, 3, generator=gen)
    t = torch.randint(0, 1000, (batch,), generator=gen)
    return x, y, t


def export_onnx(model: Denoiser, path: str | Path, opset: int = 18) -> Path:
    """Write the one-step denoiser to ``path`` (atomically)."""
    path = Path(path)
    step = Predictor(model.cpu().eval()).eval()
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about fixed-size unpacking
        try:
            torch.onnx.export(
                step,
                example_inputs(model),
                str(tmp),
                input_names=list(INPUT_NAMES),
                output_names=["y0"],
                dynamic_axes={name: {0: "batch"} for name in (*INPUT_NAMES, "y0")},
                opset_version=opset,
                dynamo=False,
            )
        except ModuleNotFoundError as exc:
            raise HtposeError(
                f"ONNX export needs the onnx package: pip install onnx ({exc})"
            ) from exc
    return path


def check_onnx(model: Denoiser, path: str | Path, batch: int = 3) -> float:
    """Largest absolute difference between onnxruntime and PyTorch on fresh inputs."""
    try:
        import onnxruntime
    except ModuleNotFoundError as exc:
        raise HtposeError("checking the export needs onnxruntime: pip install onnxruntime") from exc
    inputs = example_inputs(model, batch, seed=1)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {name: value.numpy() for name, value in zip(INPUT_NAMES, inputs)}
    ours = session.run(None, feed)[0]
    with torch.no_grad():
        ref = Predictor(model.cpu().eval())(*inputs).numpy()
    return float(np.abs(ours - ref).max())
