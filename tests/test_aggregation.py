import pytest
import torch

from htpose.aggregation import aggregate, aggregate_jpma, estimate_root
from htpose.data.camera import Camera, project

CAM = Camera("c", (1100.0, 1100.0), (500.0, 500.0), (-0.2, 0.2, 0.0), (0.001, -0.001), 1000, 1000)


def _pose(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(1, 3, 17, 3, generator=g, dtype=torch.float64) * 0.3
    return p - p[..., :1, :]


def test_jpma_picks_the_hypothesis_that_reprojects_onto_the_input():
    truth = _pose(0)
    root = torch.tensor([0.1, -0.2, 4.5], dtype=torch.float64).expand(1, 3, 3)
    intr = CAM.intrinsics()[None]
    pixels = project(truth + root[:, :, None], intr[:, None, None])
    # Hypothesis 0 is wrong in depth-ambiguous-free ways for joints 0-8, hypothesis 1 for 9-16.
    bad = truth + torch.tensor([0.15, -0.1, 0.0], dtype=torch.float64)
    h0, h1 = truth.clone(), truth.clone()
    h0[..., 1:9, :] = bad[..., 1:9, :]
    h1[..., 9:, :] = bad[..., 9:, :]
    hyps = torch.stack([h0, h1], dim=1)  # (1, 2, F, J, 3)
    picked = aggregate_jpma(hyps, pixels, intr, root)
    assert torch.allclose(picked, truth)
    # Without the root, it is solved by least squares from the mean hypothesis: with errors
    # symmetric about the truth that mean is right, and the exact hypothesis must win.
    offset = torch.tensor([0.12, -0.08, 0.05], dtype=torch.float64)
    plus, minus = truth + offset, truth - offset
    plus[..., 0, :] = minus[..., 0, :] = 0
    hyps = torch.stack([plus, truth, minus], dim=1)
    picked_free = aggregate_jpma(hyps, pixels, intr, None)
    assert torch.allclose(picked_free, truth)


def test_estimate_root_recovers_the_true_translation():
    pose = _pose(1)[0]  # (3, 17, 3)
    root = torch.tensor([[0.3, 0.1, 5.0], [-0.4, 0.2, 3.0], [0.0, 0.0, 6.5]], dtype=torch.float64)
    intr = CAM.intrinsics()
    pixels = project(pose + root[:, None], intr)
    assert torch.allclose(estimate_root(pose, pixels, intr), root, atol=1e-6)


def test_oracles_choose_the_closest():
    target = _pose(2)
    far = target + 0.2
    near = target + 0.01
    hyps = torch.stack([far, near, far], dim=1)
    assert torch.allclose(aggregate("pbest", hyps, target), near)
    mixed = far.clone()
    mixed[..., 4, :] = target[..., 4, :]
    hyps = torch.stack([near, mixed], dim=1)
    jb = aggregate("jbest", hyps, target)
    assert torch.allclose(jb[..., 4, :], target[..., 4, :])
    assert torch.allclose(jb[..., 5, :], near[..., 5, :])


def test_mean_and_errors():
    hyps = torch.stack([_pose(3), _pose(4)], dim=1)
    assert torch.allclose(aggregate("mean", hyps), hyps.mean(1))
    with pytest.raises(ValueError, match="ground truth"):
        aggregate("pbest", hyps)
    with pytest.raises(ValueError, match="unknown"):
        aggregate("median", hyps)
