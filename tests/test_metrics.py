import math

import numpy as np
import pytest
import torch

from htpose.metrics import ErrorTable, auc, mpjpe, mpjve, p_mpjpe, pck, procrustes_align


def _rotation(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=torch.float64)


def test_mpjpe_known_case():
    gt = torch.zeros(1, 17, 3, dtype=torch.float64)
    pred = gt.clone()
    pred[0, 1:, 0] = 0.03  # every non-root joint 30 mm off, the root exact
    pred[0, 5, 0] = 0.03 + 0.16  # one joint 190 mm off
    expected = (15 * 0.03 + 0.19) / 17
    assert mpjpe(pred, gt).item() == pytest.approx(expected)


def test_mpjpe_is_root_relative():
    gt = torch.randn(5, 17, 3, dtype=torch.float64)
    assert torch.allclose(
        mpjpe(gt + torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), gt),
        torch.zeros(5, dtype=torch.float64),
        atol=1e-12,
    )


def test_procrustes_removes_similarity_transform():
    gt = torch.randn(8, 17, 3, dtype=torch.float64)
    pred = 1.3 * gt @ _rotation(0.7).T + torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    assert p_mpjpe(pred, gt).max().item() < 1e-9
    assert mpjpe(pred, gt).min().item() > 0.01
    assert torch.allclose(procrustes_align(pred, gt), gt, atol=1e-9)


def test_procrustes_does_not_undo_a_reflection():
    gt = torch.randn(4, 17, 3, dtype=torch.float64)
    mirrored = gt * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert (p_mpjpe(mirrored, gt) > 1e-3).all()


def test_mpjve_zero_for_constant_offset_and_known_value():
    gt = torch.randn(10, 17, 3, dtype=torch.float64)
    assert mpjve(gt + 0.5, gt).abs().max() < 1e-12
    pred = gt.clone()
    pred[5, 3] += torch.tensor([0.017, 0, 0], dtype=torch.float64)  # one joint, one frame
    err = mpjve(pred, gt)
    assert err[4].item() == pytest.approx(0.001)  # 17 mm on 1 of 17 joints
    assert err[5].item() == pytest.approx(0.001)


def test_pck_and_auc_known_values():
    errs = np.array([[0.0, 100.0, 149.0, 151.0]])
    assert pck(errs) == pytest.approx(75.0)
    assert auc(np.zeros((1, 4))) == pytest.approx(100 * 30 / 31)  # threshold 0 counts none
    assert auc(np.full((1, 4), 1000.0)) == 0.0


def test_error_table_means():
    table = ErrorTable(("mpjpe_mm",))
    table.add("a", mpjpe_mm=np.array([10.0, 20.0]))
    table.add("b", mpjpe_mm=np.array([40.0]))
    assert table.mean_over_actions("mpjpe_mm") == pytest.approx(27.5)
    assert table.mean_over_frames("mpjpe_mm") == pytest.approx(70 / 3)
    summary = table.summary()
    assert summary["frames"] == 3
    assert summary["per_action"]["b"]["mpjpe_mm"] == 40.0
    assert "mean over actions" in table.format()
