import pickle

import pytest
import torch

from htpose.checkpoint import load_model, read_checkpoint, save_checkpoint
from htpose.config import config_from_dict
from htpose.errors import CheckpointError
from htpose.model.denoiser import build_denoiser


def test_round_trip_keeps_weights_config_and_meta(tmp_path, tiny_config):
    cfg = config_from_dict(tiny_config())
    model = build_denoiser(cfg.model)
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, cfg, {"optim/0/exp_avg": torch.ones(3)}, {"step": 7})
    loaded, cfg2, meta = load_model(path)
    assert cfg2 == cfg and meta == {"step": 7}
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    tensors, _, _ = read_checkpoint(path)
    assert torch.equal(tensors["optim/0/exp_avg"], torch.ones(3))
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind


def test_pickle_files_are_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(CheckpointError, match="pickle"):
        read_checkpoint(path)
    raw = tmp_path / "raw.safetensors"
    raw.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match="pickle"):
        read_checkpoint(raw)


def test_truncated_foreign_and_headerless_files(tmp_path, tiny_config):
    cfg = config_from_dict(tiny_config())
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, build_denoiser(cfg.model), cfg)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        read_checkpoint(cut)
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.ones(2)}, str(plain))
    with pytest.raises(CheckpointError, match="not an htpose checkpoint"):
        read_checkpoint(plain)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "missing.safetensors")


def test_checkpoint_of_another_config_is_refused(tmp_path, tiny_config):
    cfg = config_from_dict(tiny_config())
    other = tiny_config()
    other["model"]["width"] = 32
    other_cfg = config_from_dict(other)
    path = tmp_path / "m.safetensors"
    # The header says width 16, the weights are 32.
    save_checkpoint(path, build_denoiser(other_cfg.model), cfg)
    with pytest.raises(CheckpointError, match="does not fit the model config"):
        load_model(path)


def test_header_length_starting_with_pickle_byte_still_loads(tmp_path, tiny_config):
    """Regression: a safetensors header length whose low byte is 0x80 is not a pickle."""
    cfg = config_from_dict(tiny_config())
    model = build_denoiser(cfg.model)
    path = tmp_path / "m.safetensors"
    for pad in range(0, 2048, 8):
        save_checkpoint(path, model, cfg, meta={"pad": "x" * pad})
        if path.read_bytes()[:1] == b"\x80":
            break
    else:
        pytest.skip("could not construct a header length with low byte 0x80")
    _, _, meta = load_model(path)
    assert meta["pad"] == "x" * pad
