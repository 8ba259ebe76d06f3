"""Calibrated uncertainty: coverage, the fit, and its round trip through a checkpoint."""

from __future__ import annotations

import numpy as np
import yaml

from htpose.calibration import coverage, fit_scale
from htpose.checkpoint import read_checkpoint, uncertainty_scale
from htpose.cli import main


def test_fitted_scale_reaches_the_level_per_joint():
    rng = np.random.default_rng(0)
    spread = rng.uniform(0.005, 0.02, (4000, 17))
    errors = spread * rng.uniform(1, 9, (1, 17)) * np.abs(rng.normal(1, 0.5, (4000, 17)))
    scale = fit_scale(errors, spread, 0.68)
    assert scale.shape == (17,)
    for j in range(17):
        cov = coverage(errors[:, j], spread[:, j] * scale[j])["within_1x"]
        assert abs(cov - 0.68) < 0.01
    raw = coverage(errors, spread)
    assert raw["within_1x"] < 0.2  # the raw spread understates the error here
    assert raw["within_1x"] <= raw["within_2x"] <= raw["within_3x"]


def test_calibrate_writes_a_checkpoint_that_lift_uses(tmp_path, tiny_config, small_cmu,
                                                      cameras_path, capsys):  # fmt: skip
    cfg = tiny_config(str(small_cmu), str(cameras_path))
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(run), "--no-progress"]) == 0
    model = run / "model.safetensors"
    out = tmp_path / "calibrated.safetensors"
    args = ["calibrate", "--checkpoint", str(model), "--out", str(out), "--hypotheses", "3",
            "--steps", "1", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert "calibrated radius" in capsys.readouterr().out
    _, _, meta = read_checkpoint(out)
    scale = uncertainty_scale(meta)
    assert scale is not None and (scale[1:] > 0).all()  # the pelvis is the origin: 0
    assert meta["uncertainty"]["coverage_on_fit"]["calibrated"]["within_1x"] > 0.6
    # Lifting with it reports the calibrated radius: the raw spread times the factors.
    from htpose.lift import Lifter

    rng = np.random.default_rng(0)
    kp = 500 + rng.normal(0, 40, (1, 17, 2)) + rng.normal(0, 2, (20, 17, 2))
    raw = Lifter.from_pretrained(model)(kp, image_size=(1000, 1000), fps=50, hypotheses=3)
    cal = Lifter.from_pretrained(out)(kp, image_size=(1000, 1000), fps=50, hypotheses=3)
    np.testing.assert_allclose(cal.uncertainty, raw.uncertainty * scale, rtol=1e-4, atol=1e-7)
    assert "calibrated" in cal.info["uncertainty"] and "raw" in raw.info["uncertainty"]
    # Printouts and pictures name what the numbers are, also after a save and load.
    assert cal.uncertainty_label == "68 % radius" and raw.uncertainty_label == "hypothesis spread"
    from htpose.lift import load_result

    cal.save(tmp_path / "cal.npz")
    assert load_result(tmp_path / "cal.npz").uncertainty_label == "68 % radius"
    # Calibrated for another level, it says that level.
    out90 = tmp_path / "calibrated90.safetensors"
    assert main([*args[:4], str(out90), *args[5:], "--level", "0.9"]) == 0
    cal90 = Lifter.from_pretrained(out90)(kp, image_size=(1000, 1000), fps=50, hypotheses=3)
    assert cal90.uncertainty_label == "90 % radius" and "90 %" in cal90.info["uncertainty"]
    assert (cal90.uncertainty >= cal.uncertainty - 1e-9).all()
    # The output may not replace the input.
    capsys.readouterr()
    assert main(["calibrate", "--checkpoint", str(model), "--out", str(model)]) == 2
