"""ONNX export of one denoising step matches PyTorch, for the unpruned and the HTP model."""

import pytest
import torch

from htpose.cli import main
from htpose.config import config_from_dict
from htpose.export import check_onnx, export_onnx
from htpose.model.denoiser import build_denoiser

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.mark.parametrize("pruned, context", [(False, False), (True, False), (True, True)])
def test_onnx_step_matches_pytorch(tmp_path, tiny_config, pruned, context):
    values = tiny_config()
    values["model"].update(frames=27, depth=3)
    if context:  # the temporal pose context: a replicate-padded convolution
        values["model"].update(pose_context=True, pose_context_hidden=8, pose_context_frames=5)
    if pruned:
        values["model"]["pruning"] = {"tcep": True, "tcep_layer": 0, "keep_ratio": 0.5,
                                      "mgptp": True, "mgptp_layer": 2}  # fmt: skip
    cfg = config_from_dict(values)
    torch.manual_seed(0)
    model = build_denoiser(cfg.model)
    path = export_onnx(model, tmp_path / "step.onnx")
    assert check_onnx(model, path, batch=3) < 1e-4  # another batch size than traced
    assert not list(tmp_path.glob(".*.tmp"))


def test_export_cli_on_the_bundled_model(tmp_path, capsys):
    assert main(["export", "--onnx", str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    assert "max abs difference" in out and (tmp_path / "m.onnx").stat().st_size > 100_000
