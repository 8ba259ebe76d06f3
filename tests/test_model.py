import numpy as np
import torch

from htpose.config import config_from_dict
from htpose.diffusion.schedule import NoiseSchedule
from htpose.model.denoiser import Denoiser, ModelConfig
from htpose.train import diffusion_loss


def test_denoiser_shapes_and_condition_split():
    model = Denoiser(ModelConfig(frames=9, width=16, depth=2, heads=2)).eval()
    x = torch.randn(3, 9, 17, 2)
    y = torch.randn(3, 9, 17, 3)
    out = model(y, torch.tensor([0, 500, 999]), model.encode_condition(x))
    assert out.shape == (3, 9, 17, 3)
    # The split embedding equals one linear layer on concat(x, y).
    w = torch.cat([model.cond_embed.weight, model.pose_embed.weight], dim=1)
    joint = torch.cat([x, y], -1) @ w.T + model.cond_embed.bias
    split = model.cond_embed(x) + model.pose_embed(y)
    assert torch.allclose(joint, split, atol=1e-6)


def test_denoiser_rejects_wrong_window_length():
    model = Denoiser(ModelConfig(frames=9, width=16, depth=1, heads=2))
    try:
        model.encode_condition(torch.randn(1, 8, 17, 2))
    except ValueError as exc:
        assert "(N, 9, 17, 2)" in str(exc)
    else:
        raise AssertionError("a wrong window length was accepted")


def test_tiny_model_overfits_one_window(tiny_config):
    torch.manual_seed(0)
    cfg = config_from_dict(tiny_config())
    model = Denoiser(cfg.model)
    schedule = NoiseSchedule(1000)
    rng = np.random.default_rng(0)
    y0 = torch.from_numpy(rng.normal(size=(1, 9, 17, 3)).astype(np.float32)) * 0.3
    y0 = y0 - y0[..., :1, :]
    batch = {"keypoints_2d": y0[..., :2] / 4.0, "joints_3d": y0}
    batch = {k: v.expand(8, *v.shape[1:]) for k, v in batch.items()}
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(300):
        loss = diffusion_loss(model, schedule, batch, cfg, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    start, end = np.mean(losses[:10]), np.mean(losses[-20:])
    assert end < 0.2 * start, (start, end)
