"""evaluate() and predict_sequences() agree: the poses analysed are the poses scored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from htpose.config import config_from_dict
from htpose.data.sources import load_sequences
from htpose.errors import HtposeError
from htpose.evaluate import evaluate, predict_sequences
from htpose.metrics import mpjpe
from htpose.model.denoiser import build_denoiser


def test_predict_sequences_gives_the_poses_evaluate_scores(small_cmu, cameras_path, tiny_config):
    cfg = config_from_dict(tiny_config(str(small_cmu), str(cameras_path)))
    torch.manual_seed(0)
    model = build_denoiser(cfg.model).eval()
    seqs = load_sequences(small_cmu, cameras_path, "val", ["S9"], [0, 2])
    for overlap in (0.0, 0.5):
        preds = predict_sequences(model, cfg, seqs, hypotheses=3, steps=2, seed=4,
                                  overlap=overlap, batch_windows=5)  # fmt: skip
        assert [p.shape for p in preds] == [(len(s), 17, 3) for s in seqs]
        assert all(np.all(p[:, 0] == 0) for p in preds)
        res = evaluate(model, cfg, seqs, (3,), 2, seed=4, batch_windows=5, progress=False,
                       overlap=overlap)  # fmt: skip
        frames = np.concatenate([
            1000 * mpjpe(torch.from_numpy(p).double(), torch.from_numpy(s.joints_3d).double())
            for p, s in zip(preds, seqs)
        ])  # fmt: skip
        summary = res.tables[("mean", 3)].summary()
        np.testing.assert_allclose(frames.mean(), summary["mpjpe_mm_all_frames"], rtol=1e-5)
    for bad in (0.95, -0.1, float("nan")):  # both refuse the same overlaps, before sampling
        with pytest.raises(HtposeError, match="overlap must be in"):
            predict_sequences(model, cfg, seqs, hypotheses=1, steps=1, overlap=bad)
        with pytest.raises(HtposeError, match="overlap must be in"):
            evaluate(model, cfg, seqs, (1,), 1, progress=False, overlap=bad)
    for bad in (2, 33, -1):
        with pytest.raises(HtposeError, match="median_2d"):
            predict_sequences(model, cfg, seqs, hypotheses=1, steps=1, median_2d=bad)
        with pytest.raises(HtposeError, match="median_2d"):
            evaluate(model, cfg, seqs, (1,), 1, progress=False, median_2d=bad)


def test_global_pose_errors_recover_a_known_turn_and_shrink():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from global_pose_errors import frame_errors

    rng = np.random.default_rng(3)
    true = rng.normal(0, 0.3, (6, 17, 3))
    true -= true[:, :1]
    for angle, scale in ((0.0, 1.0), (0.4, 0.85), (2.5, 1.1)):  # 2.5 rad: past a right angle
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        rot = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
        pred = scale * true @ rot.T
        e = frame_errors(pred, true)
        np.testing.assert_allclose(e["rot"], np.degrees(angle), atol=1e-4)
        np.testing.assert_allclose(e["scale"], scale, rtol=1e-6)
        np.testing.assert_allclose(e["p_mpjpe"], 0, atol=1e-4)
