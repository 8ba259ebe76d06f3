import dataclasses

import numpy as np
import pytest
import torch

from htpose.config import config_from_dict
from htpose.diffusion.schedule import NoiseSchedule
from htpose.model.denoiser import Denoiser, ModelConfig, build_denoiser
from htpose.train import diffusion_loss, draw_noise


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


def test_denoiser_outputs_depend_on_their_own_window_and_across_time():
    """Values, not shapes: a window's output ignores the rest of the batch, and a change of
    the 2D in the first frame reaches the last frame (temporal attention) and other joints
    (spatial attention)."""
    torch.manual_seed(0)
    model = Denoiser(ModelConfig(frames=9, width=16, depth=2, heads=2, drop_path=0.0)).eval()
    x, y, t = torch.randn(3, 9, 17, 2), torch.randn(3, 9, 17, 3), torch.tensor([10, 500, 900])
    out = model(y, t, model.encode_condition(x))
    x2 = x.clone()
    x2[1:] = torch.randn(2, 9, 17, 2)
    out2 = model(y, t, model.encode_condition(x2))
    torch.testing.assert_close(out[0], out2[0], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out[1], out2[1])
    x3 = x.clone()
    x3[0, 0, 5] += 1.0  # one joint of the first frame
    out3 = model(y, t, model.encode_condition(x3))
    assert (out3[0, 8] - out[0, 8]).abs().max() > 1e-4  # the last frame sees it
    assert (out3[0, 0, 12] - out[0, 0, 12]).abs().max() > 1e-4  # another joint sees it


@pytest.mark.parametrize("pruned", [False, True])
@pytest.mark.parametrize("hidden, span", [(0, 1), (8, 1), (8, 5)])
def test_pose_context_gives_each_joint_token_its_whole_frame(pruned, hidden, span):
    """With ``pose_context`` a joint's condition token moves when another joint of its own
    frame moves, or (with a temporal branch) of a frame within half its span, and stays
    put for frames further away; without it, only its own 2D counts."""
    torch.manual_seed(0)
    pruning = {"tcep": True, "keep_ratio": 0.5} if pruned else {}
    model_dict = {"frames": 9, "width": 16, "depth": 2, "heads": 2, "pose_context": True}
    model_dict |= {"pose_context_hidden": hidden, "pose_context_frames": span}
    cfg = config_from_dict({"model": {**model_dict, "pruning": pruning}}).model
    model = build_denoiser(cfg).eval()
    plain = build_denoiser(
        dataclasses.replace(cfg, pose_context=False, pose_context_hidden=0, pose_context_frames=1)
    ).eval()
    x = torch.randn(2, 9, 17, 2)
    frame, joint = int(torch.randint(9, ())), int(torch.randint(17, ()))
    other = (joint + 1 + int(torch.randint(16, ()))) % 17
    reach = span // 2
    near = frame - reach if frame - reach >= 0 else frame + reach  # a frame in reach
    x2 = x.clone()
    x2[0, frame, joint] += torch.randn(2)
    for net, reaches, radius in ((model, True, reach), (plain, False, 0)):
        a, b = net.encode_condition(x).tokens, net.encode_condition(x2).tokens
        moved = (a - b).abs().amax(-1)  # (N, F, J)
        assert bool(moved[0, frame, other] > 1e-6) is reaches
        assert bool(moved[0, near, other] > 1e-6) is reaches
        assert moved[0, frame, joint] > 1e-6
        moved[0, max(frame - radius, 0) : frame + radius + 1] = 0
        assert moved.max() == 0  # frames out of reach and other windows untouched
    y, t = torch.randn(2, 9, 17, 3), torch.tensor([3, 999])
    assert model(y, t, model.encode_condition(x)).shape == (2, 9, 17, 3)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"pose_context_hidden": 8, "pose_context_frames": 4}, "odd integer"),
        ({"pose_context_hidden": -1}, "pose_context_hidden"),
        ({"pose_context_hidden": 8, "pose_context_frames": 11}, "odd integer"),
        ({"pose_context": False, "pose_context_hidden": 8}, "needs model.pose_context"),
        ({"pose_context_frames": 3}, "needs model.pose_context_hidden > 0"),
    ],
)
def test_pose_context_options_are_checked_at_config_load(bad, message):
    from htpose.errors import ConfigError

    model = {"frames": 9, "width": 16, "depth": 1, "heads": 2, "pose_context": True} | bad
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"model": model})


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
    model = build_denoiser(cfg.model)
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


@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_high_noise_share_puts_that_share_of_windows_at_the_last_timestep(share):
    schedule = NoiseSchedule(1000)
    batch = {"joints_3d": torch.zeros(4000, 1, 17, 3)}
    t = draw_noise(schedule, batch, torch.Generator().manual_seed(1), share)["t"]
    plain = draw_noise(schedule, batch, torch.Generator().manual_seed(1))["t"]
    at_last = (t == 999).float().mean().item()
    # Uniform draws land on 999 one time in 1000; the rest of the draws stay uniform.
    assert abs(at_last - (share + (1 - share) / 1000)) < 0.03
    moved = t != plain
    assert bool((t[moved] == 999).all())
    if share == 0.0:
        assert torch.equal(t, plain)  # runs without the option keep their old draws
    elif share < 1.0:
        assert 0.2 < t[~moved].float().mean().item() / 999 * 2 < 1.8


def test_plain_denoiser_holds_no_pruning_and_build_picks_the_class():
    from htpose.model import HTPDenoiser
    from htpose.model.pruning import PruningConfig

    plain = ModelConfig(frames=9, width=16, depth=2, heads=2)
    assert type(build_denoiser(plain)) is Denoiser
    assert not any("recovery" in k for k in build_denoiser(plain).state_dict())
    htp = ModelConfig(frames=9, width=16, depth=2, heads=2, pruning=PruningConfig(tcep=True))
    assert type(build_denoiser(htp)) is HTPDenoiser
    with pytest.raises(ValueError, match="build_denoiser"):
        Denoiser(htp)


@pytest.mark.parametrize("keys", [1, 3, 10, 15, 16, 17, 40, 60])
def test_attention_matches_the_fused_kernel_at_every_key_count(keys):
    # Short rows take a spelled-out softmax (the CPU kernel is slow there), long ones the
    # fused kernel: values and gradients must agree with the reference either way.
    from htpose.model.attention import attend

    gen = torch.Generator().manual_seed(keys)
    q = torch.randn(3, 2, 7, 8, dtype=torch.float64, generator=gen, requires_grad=True)
    k = torch.randn(3, 2, keys, 8, dtype=torch.float64, generator=gen, requires_grad=True)
    v = torch.randn(3, 2, keys, 8, dtype=torch.float64, generator=gen, requires_grad=True)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k * 30, v)
    out = attend(q, k * 30, v)  # x30: large scores, where a softmax without the shift overflows
    assert torch.allclose(out, ref)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
    assert all(torch.allclose(a, b) for a, b in zip(grads, ref_grads))


def test_a_pose_context_too_large_for_the_memory_budget_is_refused_at_config_load():
    """The temporal branch's parameters count against the budget: a config whose branch
    alone needs more is a clean error before anything is allocated."""
    from htpose import budget

    model = {"frames": 243, "width": 64, "depth": 1, "heads": 2, "pose_context": True}
    wide = model | {"pose_context_hidden": 8192, "pose_context_frames": 243}  # about 0.3 GB
    budget.set_limit(100 * 2**20)
    try:
        config_from_dict({"model": model})  # the map alone fits
        with pytest.raises(budget.MemoryBudgetError, match="pose context of 8192 channels"):
            config_from_dict({"model": wide})
    finally:
        budget.set_limit(None)
