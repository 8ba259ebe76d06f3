import torch

from htpose.diffusion.ddim import DDIMSampler
from htpose.diffusion.pipeline import sample_hypotheses
from htpose.diffusion.schedule import NoiseSchedule
from htpose.model.denoiser import Denoiser, ModelConfig


def test_cosine_schedule_is_monotone_and_bounded():
    s = NoiseSchedule(1000, "cosine")
    a = s.alphas_cumprod
    assert a.shape == (1000,)
    assert (a[1:] < a[:-1]).all()
    assert 0.99 < a[0] < 1 and 0 <= a[-1] < 1e-3
    assert s.alpha_bar(torch.tensor(-1)).item() == 1.0


def test_add_noise_limits():
    s = NoiseSchedule(1000)
    y0 = torch.randn(3, 9, 17, 3)
    noise = torch.randn_like(y0)
    assert torch.allclose(s.add_noise(y0, noise, torch.full((3,), -1)), y0)
    far = s.add_noise(y0, noise, torch.full((3,), 999))
    assert torch.allclose(far, noise, atol=0.05)


def test_ddim_timesteps_follow_d3dp():
    sampler = DDIMSampler(NoiseSchedule(1000), steps=5)
    assert sampler.timesteps() == [(999, 799), (799, 599), (599, 399), (399, 199), (199, -1)]


def test_ddim_with_one_step_equals_the_one_step_prediction():
    torch.manual_seed(0)
    model = Denoiser(ModelConfig(frames=5, width=16, depth=1, heads=2)).eval()
    x2d = torch.randn(2, 5, 17, 2)
    sampler = DDIMSampler(NoiseSchedule(1000), steps=1, clip=None)
    out = sample_hypotheses(
        model, sampler, x2d, 3, flip_test=False, generator=torch.Generator().manual_seed(7)
    )

    noise = torch.randn((6, 5, 17, 3), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        direct = model(
            noise, torch.full((6,), 999), model.encode_condition(x2d).repeat_interleave(3)
        )
    direct = (direct - direct[..., :1, :]).reshape(2, 3, 5, 17, 3)
    assert torch.allclose(out, direct, atol=1e-6)


def test_ddim_with_a_perfect_denoiser_returns_its_target():
    target = torch.randn(4, 7, 17, 3) * 0.2
    sampler = DDIMSampler(NoiseSchedule(1000), steps=10)
    out = sampler.sample(lambda y, t: target, target.shape, torch.Generator().manual_seed(0))
    assert torch.allclose(out, target)


def test_ddim_clip_bounds_predictions():
    sampler = DDIMSampler(NoiseSchedule(1000), steps=3, clip=1.1)
    out = sampler.sample(
        lambda y, t: torch.full_like(y, 5.0), (2, 3), torch.Generator().manual_seed(0)
    )
    assert torch.allclose(out, torch.full((2, 3), 1.1))


def test_hypotheses_differ_and_are_root_relative():
    torch.manual_seed(0)
    model = Denoiser(ModelConfig(frames=5, width=16, depth=1, heads=2)).eval()
    sampler = DDIMSampler(NoiseSchedule(1000), steps=2)
    out = sample_hypotheses(
        model,
        sampler,
        torch.randn(1, 5, 17, 2),
        4,
        flip_test=True,
        generator=torch.Generator().manual_seed(0),
    )
    assert out.shape == (1, 4, 5, 17, 3)
    assert torch.equal(out[..., 0, :], torch.zeros_like(out[..., 0, :]))
    assert (out[:, 0] - out[:, 1]).abs().max() > 1e-4
