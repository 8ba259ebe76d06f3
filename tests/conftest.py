"""Shared fixtures. Tests that need the real data in ../shared skip, saying so, without it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from htpose.data.clips import ClipCollection, read_clips, write_clips

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CMU = SHARED / "cmu" / "cmu_h36m17.npz"
CAMERAS = SHARED / "h36m_cameras.json"

torch.set_num_threads(2)


@pytest.fixture
def cmu_path() -> Path:
    if not CMU.exists():
        pytest.skip(f"real CMU data not found at {CMU} (clone the project beside ../shared)")
    return CMU


@pytest.fixture
def cameras_path() -> Path:
    if not CAMERAS.exists():
        pytest.skip(f"real Human3.6M cameras not found at {CAMERAS}")
    return CAMERAS


@pytest.fixture
def small_cmu(tmp_path, cmu_path) -> Path:
    """Two training clips, one validation and one test clip of the real CMU data, cut short."""
    full = read_clips(cmu_path)
    train = [n for n in full.splits["train"] if "/walking/" in n][:2]
    val = full.splits["val"][:1]
    test = [n for n in full.splits["test"] if "/running/" in n][:1]
    clips = {n: full.clips[n][:240] for n in train + val + test}
    path = tmp_path / "cmu_small.npz"
    splits = {"train": train, "val": val, "test": test}
    write_clips(path, ClipCollection(clips, full.fps, splits))
    return path


@pytest.fixture
def tiny_config():
    """Factory of a config dict for a denoiser small enough to train in seconds."""
    return _tiny_config_dict


def _tiny_config_dict(clips: str = "", cameras: str = "") -> dict:
    return {
        "name": "tiny",
        "model": {"frames": 9, "width": 16, "depth": 1, "heads": 2, "drop_path": 0.0},
        "data": {"clips": clips, "camera_file": cameras},
        "diffusion": {"sampling_steps": 2, "hypotheses": 2},
        "train": {
            "steps": 3,
            "batch_size": 2,
            "log_every": 1,
            "checkpoint_every": 2,
            "val_every": 3,
            "val_windows": 2,
            "warmup_steps": 1,
        },
        "eval": {"batch_windows": 8},
    }
