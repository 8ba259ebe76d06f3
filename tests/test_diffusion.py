import pytest
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


def test_ddim_update_matches_hand_computed_values():
    """Two DDIM steps with a denoiser that depends on y_t and t, against the closed form
    computed here in float64 from the cosine schedule's formula (Nichol & Dhariwal)."""
    import math

    steps, T = 2, 1000
    schedule = NoiseSchedule(T, "cosine")

    def alpha_bar(t: int) -> float:
        s = 0.008
        f = lambda u: math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
        if t == T - 1:  # the last beta (1 in closed form) is clipped to 0.999
            return f(T - 1) / f(0) * 0.001
        return f(t + 1) / f(0)

    def predict(y, t):  # not constant: y_0 guess shrinks y_t by a t-dependent factor
        return 0.5 * y * (1.0 + t[:, None].double() / T) - 0.1

    eta = 0.5  # every term of the update matters (with eta 1 the eps term vanishes at t 999)
    sampler = DDIMSampler(schedule, steps, eta=eta, clip=None)
    ts = sampler.timesteps()
    assert ts == [(999, 499), (499, -1)]
    for (t, _), a_ref in zip(ts, (alpha_bar(999), alpha_bar(499))):
        assert schedule.alpha_bar(torch.tensor(t)).item() == pytest.approx(a_ref, rel=1e-5)

    gen = torch.Generator().manual_seed(3)
    shape = (2, 4)
    out = sampler.sample(predict, shape, gen, dtype=torch.float64)

    # The same draws, by hand.
    gen = torch.Generator().manual_seed(3)
    y = torch.randn(shape, generator=gen, dtype=torch.float64)
    a, a_next = (
        schedule.alpha_bar(torch.tensor(999)).item(),
        schedule.alpha_bar(torch.tensor(499)).item(),
    )
    y0 = 0.5 * y * (1.0 + 999 / T) - 0.1
    eps = (y - math.sqrt(a) * y0) / math.sqrt(1 - a)
    sigma = eta * math.sqrt((1 - a / a_next) * (1 - a_next) / (1 - a))
    z = torch.randn(shape, generator=gen, dtype=torch.float64)
    y1 = math.sqrt(a_next) * y0 + math.sqrt(1 - a_next - sigma**2) * eps + sigma * z
    expected = 0.5 * y1 * (1.0 + 499 / T) - 0.1
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    # And the values are not degenerate: the update mixed all three terms.
    assert 0 < sigma < 1 and math.sqrt(1 - a_next - sigma**2) > 0.01


class _ConditionEcho(torch.nn.Module):
    """A 'denoiser' whose y_0 is read off its 2D condition (x, y, depth = x): the sampler's
    output then shows exactly which (plain or mirrored) 2D each hypothesis saw. Depth = x is
    not mirror-symmetric, so mirrored hypotheses come out with depth = -x."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def encode_condition(self, keypoints_2d):
        from htpose.model.denoiser import Condition

        return Condition(keypoints_2d)

    def forward(self, y_t, t, cond):
        xy = cond.tokens
        return _echo(xy) + 0 * y_t


def _echo(xy):
    return torch.cat([xy, xy[..., :1]], -1)


@pytest.mark.parametrize("hypotheses", [1, 2, 5])
def test_split_flip_alternates_plain_and_mirrored_hypotheses(hypotheses):
    from htpose.data.sequences import flip_2d, flip_3d

    torch.manual_seed(0)
    x = torch.randn(3, 9, 17, 2)
    x[..., 0, :] = 0
    # An input whose mirror is a different pose, so the two kinds are told apart.
    model = _ConditionEcho()
    sampler = DDIMSampler(NoiseSchedule(100), 2, 1.0, None)
    out = sample_hypotheses(model, sampler, x, hypotheses, "split")
    assert out.shape == (3, hypotheses, 9, 17, 3)
    plain, mirrored = _echo(x), flip_3d(_echo(flip_2d(x)))
    assert not torch.allclose(plain, mirrored)
    plain, mirrored = plain - plain[..., :1, :], mirrored - mirrored[..., :1, :]
    assert not torch.allclose(plain, mirrored)
    for h in range(hypotheses):
        want = plain if h % 2 == 0 else mirrored
        torch.testing.assert_close(out[:, h], want)
