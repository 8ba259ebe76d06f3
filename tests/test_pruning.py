import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from htpose.config import config_from_dict
from htpose.diffusion.ddim import DDIMSampler
from htpose.diffusion.pipeline import sample_hypotheses
from htpose.diffusion.schedule import NoiseSchedule
from htpose.errors import ConfigError
from htpose.model.attention import SelfAttention
from htpose.model.denoiser import Denoiser, ModelConfig, build_denoiser
from htpose.model.pruning import PruningConfig, dpc_knn_merge, select_frames
from htpose.model.pruning import tcep as tcep_module


def _walk(frames: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """Normalised 2D windows (N, F, 17, 2) of a swinging, drifting skeleton."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(batch, 1, 17, 2, generator=g) * 0.2
    t = torch.arange(frames, dtype=torch.float32)[None, :, None, None]
    phase = torch.rand(batch, 1, 17, 1, generator=g) * 6
    return base + 0.05 * torch.sin(t / 5 + phase) + 0.002 * t


@settings(max_examples=40, deadline=None)
@given(frames=st.integers(3, 120), ratio=st.floats(0.05, 1.0), seed=st.integers(0, 1000))
def test_kept_frames_are_sorted_unique_and_keep_both_ends(frames, ratio, seed):
    count = max(2, min(frames, round(ratio * frames)))
    x = _walk(frames, batch=3, seed=seed) + torch.randn(3, frames, 17, 2) * 0.01
    plan = select_frames(x, count)
    assert plan.kept.shape == (3, count) and plan.pruned.shape == (3, frames - count)
    for row, rest in zip(plan.kept, plan.pruned):
        assert torch.all(row[1:] > row[:-1])
        assert row[0] == 0 and row[-1] == frames - 1
        assert sorted(row.tolist() + rest.tolist()) == list(range(frames))
    assert plan.mask.sum(1).tolist() == [count] * 3


def test_static_stretch_keeps_fewer_frames_than_moving_stretch():
    frames = 81
    x = _walk(frames)
    x[:, :40] = x[:, :1]  # the first half stands still
    plan = select_frames(x, 27)
    kept = plan.kept[0]
    static, moving = (kept < 40).sum().item(), (kept >= 40).sum().item()
    assert moving > 2 * static, (static, moving)
    assert plan.scores[0, 5:35].max() < plan.scores[0, 45:75].mean()


def test_motion_changes_score_above_steady_motion():
    frames = 61
    t = torch.arange(frames, dtype=torch.float32)
    x = torch.zeros(1, frames, 17, 2)
    x[0, :, 5, 0] = torch.where(t < 30, t, 60 - t) * 0.01  # one joint goes out and back
    scores = select_frames(x, 10).scores[0]
    assert scores[30] > scores[10] and scores[30] > scores[50]


def _dense_motion_graph_scores(x: torch.Tensor, threshold: float, radius: int) -> torch.Tensor:
    """The motion graph written out as a dense (N, F, F) matrix: the reference."""
    n, f = x.shape[:2]
    pose = (x - x[..., :1, :]).reshape(n, f, -1).double()
    idx = torch.arange(f)
    prev, nxt = idx.sub(1).clamp_min(0), idx.add(1).clamp_max(f - 1)
    vel = (pose[:, nxt] - pose[:, prev]) / 2
    accel = (pose[:, nxt] - 2 * pose + pose[:, prev]).norm(dim=-1)
    speed = vel.norm(dim=-1)
    unit = vel / speed.clamp_min(1e-9)[..., None]
    gap = (idx[:, None] - idx[None, :]).abs()
    band = (gap > 0) & (gap <= radius)
    corr = torch.where(band, (unit @ unit.transpose(1, 2)).clamp_min(0), 0.0)
    adj = torch.where(corr >= threshold * corr.amax(-1, keepdim=True), corr, 0.0)
    weight = torch.exp(-gap.double() / radius) * band
    redundancy = (adj * weight).sum(-1) / weight.sum(-1).clamp_min(1e-9)
    scale = speed.mean(1, keepdim=True).clamp_min(1e-6)
    floor = tcep_module.SCORE_FLOOR
    return ((speed / scale + floor) * (1 - redundancy + floor) + accel / scale).float()


@settings(max_examples=40, deadline=None)
@given(
    frames=st.integers(2, 60),
    radius=st.integers(1, 12),
    threshold=st.floats(0.0, 1.0),
    still=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_banded_motion_graph_equals_the_dense_graph(frames, radius, threshold, still, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, frames, 17, 2, generator=gen).cumsum(1)
    if still:  # a held pose: zero motion, where the cosine is undefined
        x[:, frames // 2 :] = x[:, frames // 2 : frames // 2 + 1]
    banded = tcep_module.motion_graph_scores(x, threshold, radius)
    torch.testing.assert_close(banded, _dense_motion_graph_scores(x, threshold, radius))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 6),
    frames=st.integers(3, 90),
    share=st.floats(0.0, 1.0),
    levels=st.sampled_from([None, 1, 3]),
    seed=st.integers(0, 1000),
)
def test_greedy_spread_picks_the_same_frames_eagerly_and_under_tracing(
    rows, frames, share, levels, seed
):
    # The eager NumPy loop and the traceable torch loop (export) must agree, ties included:
    # integer-valued scores (levels) make ties common, real-valued scores make them rare.
    gen = torch.Generator().manual_seed(seed)
    scores = torch.rand(rows, frames, generator=gen)
    if levels is not None:
        scores = (scores * levels).round()
    count = 2 + round(share * (frames - 2))
    eager = tcep_module.greedy_spread(scores, count)
    traced = tcep_module._greedy_spread_torch(scores, count)
    assert torch.equal(eager, traced)
    assert eager.dtype == torch.bool and (eager.sum(1) == count).all()


def test_uniform_scoring_spreads_evenly():
    plan = select_frames(_walk(81), 5, scoring="uniform")
    assert plan.kept[0].tolist() == [0, 20, 40, 60, 80]


@settings(max_examples=30, deadline=None)
@given(frames=st.integers(5, 120), data=st.data())
def test_keyframe_scoring_finds_the_turns_of_a_piecewise_linear_motion(frames, data):
    """Random turning points: ends + turns reproduce the motion exactly by interpolation,
    and the greedy residual choice finds every turn before any other frame."""
    turns = sorted(data.draw(st.sets(st.integers(1, frames - 2), min_size=1, max_size=3)))
    knots = [0, *turns, frames - 1]
    g = torch.Generator().manual_seed(frames)
    values = torch.randn(len(knots), 17, 2, generator=g)
    values[:, 0] = 0  # root-relative motion only
    x = torch.from_numpy(
        np.stack([np.interp(np.arange(frames), knots, values[:, j, c].numpy())
                  for j in range(17) for c in range(2)], axis=-1).reshape(frames, 17, 2)
    ).float()[None]  # fmt: skip
    x = x + torch.randn(1, 1, 17, 2, generator=g)  # a global offset changes nothing
    plan = select_frames(x, len(knots), scoring="keyframe")
    assert plan.kept[0].tolist() == knots
    chosen = plan.mask
    torch.testing.assert_close(
        tcep_module.interpolate_frames(x - x[..., :1, :], chosen), x - x[..., :1, :],
        atol=1e-5, rtol=0,
    )  # fmt: skip


@pytest.mark.parametrize("frames, count", [(81, 27), (9, 2), (30, 30), (17, 5)])
def test_random_scoring_keeps_the_ends_and_varies_with_the_seed(frames, count):
    x = _walk(frames, batch=64)
    torch.manual_seed(0)
    a = select_frames(x, count, scoring="random")
    torch.manual_seed(0)
    assert torch.equal(select_frames(x, count, scoring="random").kept, a.kept)
    assert a.kept.shape == (64, count)
    assert bool((a.kept[:, 0] == 0).all() and (a.kept[:, -1] == frames - 1).all())
    assert bool((a.kept.diff(dim=1) > 0).all())  # sorted, no frame twice
    if 2 < count < frames:
        assert len({tuple(r) for r in a.kept.tolist()}) > 1  # windows get different frames


def test_clustering_merges_identical_tokens():
    g = torch.Generator().manual_seed(0)
    distinct = torch.randn(3, 4, 8, generator=g)  # three distinct frame tokens (J=4, C=8)
    order = torch.tensor([0, 1, 0, 2, 1, 1, 2, 0])
    tokens = distinct[order][None]  # (1, 8, 4, 8)
    merged, assign = dpc_knn_merge(tokens, 3, k=2)
    assert merged.shape == (1, 3, 4, 8)
    for value in range(3):
        members = assign[0][order == value]
        assert len(set(members.tolist())) == 1  # identical tokens share one cluster
        assert torch.allclose(merged[0, members[0]], distinct[value], atol=1e-6)


def test_merging_is_a_mean_and_keeps_gradients():
    tokens = torch.randn(2, 10, 17, 8, requires_grad=True)
    merged, assign = dpc_knn_merge(tokens, 4)
    assert merged.shape == (2, 4, 17, 8)
    slot = assign[0, 0].item()
    members = tokens[0][assign[0] == slot]
    assert torch.allclose(merged[0, slot], members.mean(0), atol=1e-6)
    merged.sum().backward()
    assert tokens.grad is not None and tokens.grad.abs().sum() > 0


def _htp(frames=27, **pruning) -> ModelConfig:
    opts = {"tcep": True, "tcep_layer": 1, "keep_ratio": 0.34, "mgptp": True, "mgptp_layer": 2}
    opts.update(pruning)
    return ModelConfig(
        frames=frames, width=16, depth=3, heads=2, drop_path=0.0, pruning=PruningConfig(**opts)
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"sft": False, "mgptp": False},
        {"scoring": "uniform"},
        {"scoring": "random"},
        {"scoring": "keyframe"},
        {"recovery": "attend"},
    ],
)
def test_pruned_model_is_a_drop_in_replacement_and_trains_every_parameter(options):
    torch.manual_seed(0)
    base = Denoiser(ModelConfig(frames=27, width=16, depth=3, heads=2))
    model = build_denoiser(_htp(**options))
    x, y = _walk(27, batch=2), torch.randn(2, 27, 17, 3)
    t = torch.tensor([10, 900])
    out = model(y, t, model.encode_condition(x))
    assert out.shape == base(y, t, base.encode_condition(x)).shape == (2, 27, 17, 3)
    # Recovery's learned queries start at zero and would get no gradient through a zero
    # path; perturb them so the check covers every parameter honestly.
    with torch.no_grad():
        model.recovery.query.normal_(0, 0.02)
    model(y, t, model.encode_condition(x)).pow(2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_frame_choice_is_made_once_per_clip(monkeypatch):
    calls = []
    real = tcep_module.select_frames

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("htpose.model.htp.select_frames", counting)
    model = build_denoiser(_htp()).eval()
    sampler = DDIMSampler(NoiseSchedule(1000), steps=4)
    out = sample_hypotheses(model, sampler, _walk(27, batch=2), 5, flip_test=True)
    assert out.shape == (2, 5, 27, 17, 3)
    assert len(calls) == 2  # plain and flipped 2D, not H x K x 2 = 40


@pytest.mark.parametrize("key", ["sft_topk", "sft_band"])
def test_removed_sft_options_are_dropped_at_zero_and_refused_otherwise(key):
    from htpose.config import config_from_dict
    from htpose.errors import ConfigError

    cfg = config_from_dict({"model": {"pruning": {"tcep": True, key: 0}}})
    assert cfg.model.pruning.sft and not hasattr(cfg.model.pruning, key)
    with pytest.raises(ConfigError, match=f"{key} was removed"):
        config_from_dict({"model": {"pruning": {"tcep": True, key: 3}}})


def test_memory_keys_are_read():
    attn = SelfAttention(8, 2)
    x, memory = torch.randn(3, 5, 8), torch.randn(3, 4, 8)
    assert attn(x, memory).shape == (3, 5, 8)
    assert not torch.allclose(attn(x, memory), attn(x))


@pytest.mark.parametrize(
    "pruning, match",
    [
        ({"tcep": True, "keep_ratio": 0.0}, "keep_ratio"),
        ({"tcep": True, "keep_ratio": 1.5}, "keep_ratio"),
        ({"tcep": True, "tcep_layer": 4}, "tcep_layer"),
        ({"tcep": True, "mgptp": True, "mgptp_layer": 1, "tcep_layer": 1}, "mgptp_layer"),
        ({"tcep": True, "mgptp": True, "merge_ratio": 0}, "merge_ratio"),
        ({"tcep": True, "keep_ratio": 0.1}, "shorter than the kept budget"),
        ({"mgptp": True}, "needs model.pruning.tcep"),
        ({"tcep": True, "scoring": "entropy"}, "scoring"),
        ({"tcep": True, "recovery": "copy"}, "recovery"),
    ],
)
def test_bad_pruning_settings_fail_at_config_load(pruning, match):
    values = {"model": {"frames": 9, "width": 16, "depth": 4, "heads": 2, "pruning": pruning}}
    with pytest.raises(ConfigError, match=match):
        config_from_dict(values)


def test_kept_budget_helpers():
    p = PruningConfig(tcep=True, keep_ratio=1 / 3, mgptp=True, merge_ratio=0.5)
    assert p.kept_frames(243) == 81 and p.merged_tokens(243) == math.floor(81 / 2 + 0.5)


def test_interpolation_is_exact_at_kept_frames_and_linear_between():
    from htpose.model.pruning.recovery import interpolate_frames

    kept = torch.tensor([[0, 3, 9], [0, 1, 9]])
    values = torch.tensor([[0.0, 3.0, 6.0], [5.0, 1.0, 1.0]])[..., None]  # (2, 3, 1)
    out = interpolate_frames(values, kept, 10)[..., 0]
    assert out[0].tolist() == pytest.approx([0, 1, 2, 3, 3.5, 4, 4.5, 5, 5.5, 6])
    assert out[1].tolist() == pytest.approx([5, 1, 1, 1, 1, 1, 1, 1, 1, 1])


def test_propagating_recovery_returns_kept_frames_as_processed():
    from htpose.model.pruning.recovery import Recovery

    rec = Recovery(frames=12, width=8, heads=2, mode="propagate")
    with torch.no_grad():
        rec.proj.weight.zero_()
        rec.proj.bias.zero_()  # silence the cross-attention: only propagation remains
    full = torch.randn(2, 12, 17, 8)
    kept = torch.tensor([[0, 4, 7, 11], [0, 1, 2, 11]])
    kept_tokens = torch.randn(2, 4, 17, 8)
    out = rec(full, kept_tokens, kept, kept_tokens)
    for b in range(2):
        assert torch.allclose(out[b, kept[b]], kept_tokens[b], atol=1e-6)
    # A pruned frame moves by the interpolated update of its neighbours.
    delta = kept_tokens[0, 1] - full[0, 4], kept_tokens[0, 2] - full[0, 7]
    assert torch.allclose(out[0, 5], full[0, 5] + (2 * delta[0] + delta[1]) / 3, atol=1e-5)


def test_a_trained_htp_model_is_replanned_without_retraining(tmp_path, capsys):
    """TCEP and MGPTP have no weights: other ratios and layers apply to the same weights, and
    the MACs fall with the kept share; bad values and unpruned models are refused."""
    from htpose.checkpoint import load_model, save_checkpoint
    from htpose.cli import main
    from htpose.config import config_from_dict
    from htpose.model.pruning.config import replan
    from htpose.profile import profile_config

    cfg = config_from_dict({"model": {"frames": 27, "width": 16, "depth": 3, "heads": 2,
                            "pruning": {"tcep": True, "keep_ratio": 0.5, "mgptp": True,
                                        "mgptp_layer": 2}}})  # fmt: skip
    model = build_denoiser(cfg.model)
    path = tmp_path / "htp.safetensors"
    save_checkpoint(path, model, cfg)
    macs = []
    for ratio in (1.0, 0.75, 0.5, 0.25):
        m, c, _ = load_model(path)
        replan(c.model, keep_ratio=ratio)
        assert m.cfg.pruning.keep_ratio == ratio  # the loaded model uses the new plan
        x = torch.randn(2, 27, 17, 2)
        out = m(torch.randn(2, 27, 17, 3), torch.tensor([5, 500]), m.encode_condition(x))
        assert out.shape == (2, 27, 17, 3) and torch.isfinite(out).all()
        assert m.encode_condition(x).plan.kept.shape[1] == c.model.pruning.kept_frames(27)
        macs.append(profile_config(c, 2, 2).infer_gmacs)
    assert macs == sorted(macs, reverse=True) and macs[-1] < 0.6 * macs[0]
    kp = tmp_path / "kp.npz"
    np.savez(kp, keypoints=500 + np.random.default_rng(0).normal(0, 40, (30, 17, 2)),
             fps=np.float64(50), width=1000, height=1000)  # fmt: skip
    base = ["lift", str(kp), "-o", str(tmp_path / "o.npz"), "--checkpoint", str(path),
            "--hypotheses", "1", "--steps", "1", "--no-progress"]  # fmt: skip
    assert main([*base, "--keep-ratio", "0.33", "--merge-ratio", "0.5"]) == 0
    assert main([*base, "--scoring", "uniform"]) == 0
    m, c, _ = load_model(path)
    replan(c.model, scoring="uniform")
    kept = m.encode_condition(torch.randn(1, 27, 17, 2)).plan.kept[0]
    assert torch.equal(kept, torch.linspace(0, 26, len(kept)).round().long())
    for bad, match in ((["--keep-ratio", "0"], "keep-ratio"), (["--keep-ratio", "nan"], "keep"),
                       (["--scoring", "best"], "--scoring"),
                       (["--mgptp-layer", "0"], "mgptp_layer"),
                       (["--tcep-layer", "5"], "tcep_layer")):  # fmt: skip
        capsys.readouterr()
        assert main([*base, *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("htpose: error:") and match in err and "\n" not in err, err
    plain = tmp_path / "plain.safetensors"
    cfg.model.pruning = type(cfg.model.pruning)()
    save_checkpoint(plain, build_denoiser(cfg.model), cfg)
    capsys.readouterr()
    args = ["lift", str(kp), "-o", str(tmp_path / "p.npz"), "--checkpoint", str(plain),
            "--keep-ratio", "0.5"]  # fmt: skip
    assert main(args) == 2 and "not pruned" in capsys.readouterr().err


def test_train_scoring_applies_in_training_mode_only():
    """``train_scoring`` chooses the frames while training; eval mode goes back to
    ``scoring``, so a model trained on random plans is evaluated on its own plan."""
    cfg = config_from_dict({"model": {"frames": 27, "width": 16, "depth": 2, "heads": 2,
                            "pruning": {"tcep": True, "keep_ratio": 0.4, "scoring": "uniform",
                                        "train_scoring": "random"}}})  # fmt: skip
    model = build_denoiser(cfg.model)
    x = torch.randn(64, 27, 17, 2)
    model.eval()
    even = model.encode_condition(x).plan.kept
    assert (even == even[0]).all()  # evenly spaced: one plan for every window
    model.train()
    drawn = model.encode_condition(x).plan.kept
    assert drawn.shape == even.shape and not (drawn == drawn[0]).all()
    assert (drawn[:, 0] == 0).all() and (drawn[:, -1] == 26).all()  # both ends kept
    with pytest.raises(ConfigError, match="train_scoring"):
        config_from_dict({"model": {"pruning": {"tcep": True, "train_scoring": "best"}}})


def test_a_run_resumes_on_other_training_plans_but_not_another_network():
    """``train_scoring`` has no weights, so a resume may change it; a width may not change."""
    from htpose.train import _same_model

    def model(**over):
        pruning = {"tcep": True, "keep_ratio": 0.5, **over.pop("pruning", {})}
        return config_from_dict({"model": {"frames": 27, "pruning": pruning, **over}}).model

    assert _same_model(model(), model(pruning={"train_scoring": "random"}))
    assert not _same_model(model(), model(width=32))
    assert not _same_model(model(), model(pruning={"scoring": "uniform"}))
