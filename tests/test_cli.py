import json
import subprocess
import sys

import pytest
import torch
import yaml

from htpose.checkpoint import read_checkpoint
from htpose.cli import main
from htpose.data.clips import read_clips


@pytest.fixture
def tiny_yaml(tmp_path, tiny_config, small_cmu, cameras_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(str(small_cmu), str(cameras_path))))
    return path


def _train(config, out, steps: int, *extra: str) -> int:
    args = ["train", "--config", str(config), "--out", str(out), "--steps", str(steps)]
    return main([*args, *extra, "--no-progress"])


def _one_line_error(capsys, code: int, match: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("htpose: error:") and match in err, err
    assert "\n" not in err and "Traceback" not in err


def test_train_resume_and_evaluate(tmp_path, tiny_yaml, small_cmu, capsys, monkeypatch):
    run = tmp_path / "run"
    assert _train(tiny_yaml, run, 4) == 0
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4] and "val_mpjpe_mm" in log[-1]

    # Two steps, then a resumed run to four, ends with the same weights.
    split = tmp_path / "split"
    assert _train(tiny_yaml, split, 4, "--stop-at", "2") == 0
    assert read_checkpoint(split / "last.safetensors")[2]["step"] == 2
    assert _train(tiny_yaml, split, 4, "--resume") == 0
    a, _, meta_a = read_checkpoint(run / "model.safetensors")
    b, _, meta_b = read_checkpoint(split / "model.safetensors")
    assert meta_a["step"] == meta_b["step"] == 4
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k

    out = tmp_path / "eval.json"
    code = main(
        [
            "evaluate",
            "--checkpoint",
            str(run / "model.safetensors"),
            "--hypotheses",
            "1,3",
            "--steps",
            "2",
            "--aggregate",
            "mean,jpma,pbest,jbest",
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    doc = json.loads(out.read_text())
    n = len(read_clips(small_cmu).clips[read_clips(small_cmu).splits["test"][0]])
    assert doc["frames"] == ((n - 1) * 50 // 120 + 1) * 8  # resampled to 50 Hz, 8 test views
    assert doc["aggregate"] == "mean" and doc["hypotheses"] == 3
    assert set(doc["per_action"]) == {"running"}
    assert doc["mpjpe_mm"] > 0 and doc["p_mpjpe_mm"] <= doc["mpjpe_mm"]
    assert len(doc["results"]) == 8
    by = {(r["aggregate"], r["hypotheses"]): r["mpjpe_mm"] for r in doc["results"]}
    assert by[("jbest", 3)] <= by[("jbest", 1)] + 1e-9  # more hypotheses never hurt the oracle
    assert "mean over actions" in capsys.readouterr().out

    # --noisy with another config's noise model: that model is the one applied.
    loud = tmp_path / "loud.yaml"
    loud.write_text(_with_noise(tiny_yaml, 80.0))
    import htpose.evaluate as evaluate_module

    used = []
    real = evaluate_module.add_noise

    def spy(sequences, noise, seed):
        used.append(noise)
        return real(sequences, noise, seed)

    monkeypatch.setattr(evaluate_module, "add_noise", spy)
    args = ["evaluate", "--checkpoint", str(run / "model.safetensors"), "--hypotheses", "1",
            "--steps", "1", "--no-progress", "--noisy"]  # fmt: skip
    assert main(args) == 0 and main([*args, "--noise-from", str(loud)]) == 0
    assert used[0].jitter_px != 80.0 and used[1].jitter_px == 80.0
    assert main(["evaluate", "--noise-from", str(loud)]) == 2
    assert "needs --noisy" in capsys.readouterr().err


def _with_noise(config_path, jitter_px: float) -> str:
    import yaml

    doc = yaml.safe_load(config_path.read_text())
    doc.setdefault("data", {})["noise"] = {"jitter_px": jitter_px, "drift_px": 0.0}
    return yaml.safe_dump(doc)


def test_profile_json(tiny_yaml, capsys):
    assert main(["profile", "--config", str(tiny_yaml), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["params_m"] > 0
    assert doc["infer_gmacs"] > doc["infer_gmacs_linear"] > 0
    assert doc["train_gmacs"] > 0


@pytest.mark.parametrize(
    "content, match",
    [
        ("model: {frames: 9, widht: 16}", "unknown key model.widht"),
        ("model: {width: 10, heads: 4}", "divisible"),
        ("train: {steps: many}", "train.steps must be an integer"),
        ("model: [1, 2", "not valid YAML"),
        ("model:\n  width: 64\n  width: 32\n", "'width' is given twice (line 3)"),
        ("model: {frames: 9}\ntrain: {}\nmodel: {frames: 27}\n", "'model' is given twice"),
        ("diffusion: {sampling_steps: 0}", "sampling_steps"),
        ("diffusion: {high_noise_share: 1.5}", "high_noise_share"),
        ("diffusion: {high_noise_share: .nan}", "high_noise_share"),
    ],
)
def test_bad_configs_give_one_line_errors(tmp_path, capsys, content, match):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    _one_line_error(capsys, main(["profile", "--config", str(path)]), match)


def test_an_override_with_a_key_given_twice_is_refused(tiny_yaml, capsys):
    value = "model.pruning={keep_ratio: 0.5, keep_ratio: 0.3}"
    code = main(["profile", "--config", str(tiny_yaml), "--set", value])
    _one_line_error(capsys, code, "'keep_ratio' is given twice")


def test_bad_inputs_give_one_line_errors(tmp_path, tiny_yaml, capsys):
    _one_line_error(capsys, main(["train", "--config", str(tmp_path / "none.yaml")]), "not found")
    _one_line_error(
        capsys, main(["evaluate", "--checkpoint", str(tmp_path / "none.safetensors")]), "not found"
    )
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    _one_line_error(
        capsys, main(["evaluate", "--checkpoint", str(junk)]), "not a readable safetensors"
    )

    run = tmp_path / "run"
    assert _train(tiny_yaml, run, 1) == 0
    capsys.readouterr()
    ckpt = str(run / "model.safetensors")
    nan = tmp_path / "nan.npz"
    import numpy as np

    np.savez(nan, clip=np.full((20, 17, 3), np.nan, np.float32))
    (tmp_path / "nan.json").write_text('{"fps": 50}')
    _one_line_error(
        capsys,
        main(["evaluate", "--checkpoint", ckpt, "--data", str(nan), "--split", "all"]),
        "NaN",
    )
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, clip=np.zeros((20, 25, 3), np.float32))
    (tmp_path / "wrong.json").write_text('{"fps": 50}')
    _one_line_error(
        capsys,
        main(["evaluate", "--checkpoint", ckpt, "--data", str(wrong), "--split", "all"]),
        "expected (frames, 17, 3)",
    )
    _one_line_error(
        capsys,
        main(["evaluate", "--checkpoint", ckpt, "--aggregate", "median"]),
        "unknown aggregation",
    )
    _one_line_error(
        capsys, main(["evaluate", "--checkpoint", ckpt, "--split", "valid"]), "split 'valid'"
    )
    truncated = tmp_path / "cut.npz"
    truncated.write_bytes(wrong.read_bytes()[:100])
    _one_line_error(
        capsys, main(["evaluate", "--checkpoint", ckpt, "--data", str(truncated)]), "not an .npz"
    )


def test_command_line_prints_no_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "htpose",
            "evaluate",
            "--checkpoint",
            str(tmp_path / "x.safetensors"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


def test_profile_side_by_side_json(tmp_path, tiny_config, capsys):
    base = tiny_config()
    base["model"]["depth"] = 2
    pruned = tiny_config()
    pruned["model"]["depth"] = 2
    pruned["model"]["pruning"] = {
        "tcep": True,
        "tcep_layer": 0,
        "keep_ratio": 0.34,
        "mgptp": True,
        "mgptp_layer": 1,
        "merge_ratio": 0.5,
    }
    paths = []
    for name, values in (("base", base), ("htp", pruned)):
        paths.append(tmp_path / f"{name}.yaml")
        paths[-1].write_text(yaml.safe_dump(values))
    code = main(
        ["profile", "--baseline", str(paths[0]), "--pruned", str(paths[1]), "--time", "2", "--json"]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    for side in ("baseline", "pruned"):
        assert set(doc[side]) >= {"params_m", "train_gmacs", "infer_gmacs", "fps"}
        assert doc[side]["fps"] > 0 and doc[side]["train_step_s"] > 0
        assert doc[side]["infer_peak_mib"] is None  # measured on a GPU only
    assert 0.3 < doc["infer_macs_reduction"] < 1 and 0.3 < doc["train_macs_reduction"] < 1
    assert doc["infer_macs_reduction"] == pytest.approx(
        1 - doc["pruned"]["infer_gmacs"] / doc["baseline"]["infer_gmacs"]
    )
    assert doc["speedup"] == pytest.approx(doc["pruned"]["fps"] / doc["baseline"]["fps"])
    steps = doc["baseline"]["train_step_s"], doc["pruned"]["train_step_s"]
    assert doc["train_speedup"] == pytest.approx(steps[0] / steps[1])
    _one_line_error(capsys, main(["profile", "--baseline", str(paths[0])]), "go together")


def test_control_characters_in_user_data_stay_on_one_line(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text('"bad\\nkey": 1\n')  # a YAML key holding a line break
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "bad\\nkey" in err


def test_evaluate_tilt_runs_and_refuses_bad_angles(tmp_path, small_cmu, cameras_path, capsys):
    out = tmp_path / "lying.json"
    args = ["evaluate", "--data", str(small_cmu), "--cameras", str(cameras_path)]
    args += ["--hypotheses", "1", "--steps", "1", "--no-progress"]
    assert main([*args, "--tilt", "90", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["mpjpe_mm"] > 0
    for bad in ("200", "nan", "lying"):
        with pytest.raises(SystemExit) as exc:
            main([*args, "--tilt", bad])
        assert exc.value.code == 2
        assert "--tilt" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--subjects", "--aggregate", "--views", "--hypotheses"])
@pytest.mark.parametrize("value", ["", ",", " , "])
def test_evaluate_refuses_empty_lists(flag, value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"htpose: error: argument {flag}")


def test_evaluate_without_checkpoint_uses_the_bundled_model(tmp_path, small_cmu, cameras_path):
    out = tmp_path / "bundled.json"
    args = ["evaluate", "--data", str(small_cmu), "--cameras", str(cameras_path)]
    args += ["--hypotheses", "1", "--steps", "1", "--json", str(out), "--no-progress"]
    assert main(args) == 0
    doc = json.loads(out.read_text())
    assert doc["checkpoint"].endswith("cmu_htp.safetensors")
    # A trained model: an untrained one is off by hundreds of millimetres.
    assert 0 < doc["mpjpe_mm"] < 150, doc["mpjpe_mm"]


def test_evaluate_novel_cameras_reports_rows_per_camera_kind(small_cmu, capsys):
    args = ["evaluate", "--data", str(small_cmu), "--cameras", "random:4:0", "--views", "0"]
    assert main([*args, "--hypotheses", "1", "--steps", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "mean over camera kinds" in out and "mean over actions" not in out
    kinds = {"phone", "webcam_low", "corner_high", "telephoto"}
    assert kinds <= {line.split()[0] for line in out.splitlines() if line.strip()}


def _assert_same_outputs(a, b, frames: int, levels: list[int]) -> None:
    """Two denoisers give the same ``y_0`` on random 2D, noisy poses and these noise levels."""
    torch.manual_seed(0)
    n = len(levels)
    x, y, t = torch.randn(n, frames, 17, 2), torch.randn(n, frames, 17, 3), torch.tensor(levels)
    with torch.no_grad():
        torch.testing.assert_close(a(y, t, a.encode_condition(x)), b(y, t, b.encode_condition(x)))


def test_init_from_grows_a_trained_model_by_pose_context(tmp_path, tiny_yaml, capsys):
    """``--init-from`` starts a new run from a checkpoint's weights; a ``pose_context`` the
    checkpoint lacks starts at zero, so the grown model first computes what it did."""
    from htpose.checkpoint import load_grown_weights, load_model, model_state
    from htpose.model.denoiser import build_denoiser

    source = tmp_path / "source"
    assert _train(tiny_yaml, source, 2) == 0
    model, cfg, _ = load_model(source / "model.safetensors")
    cfg.model.pose_context = True
    grown = build_denoiser(cfg.model).eval()
    tensors = read_checkpoint(source / "model.safetensors")[0]
    zeroed = load_grown_weights(grown, model_state(tensors), "source")
    assert sorted(zeroed) == ["pose_context.bias", "pose_context.weight"]
    _assert_same_outputs(grown, model, frames=9, levels=[0, 400, 999])

    run = tmp_path / "grown"
    init = ["--init-from", str(source / "model.safetensors")]
    assert _train(tiny_yaml, run, 2, *init, "--set", "model.pose_context=true") == 0
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 0 and sorted(first["grown"]) == sorted(zeroed)
    trained = read_checkpoint(run / "model.safetensors")[0]
    assert trained["pose_context.weight"].abs().max() > 0  # it learns from there
    # The same command again resumes that run instead of starting over.
    assert _train(tiny_yaml, run, 3, *init, "--set", "model.pose_context=true", "--resume") == 0
    assert read_checkpoint(run / "model.safetensors")[2]["step"] == 3
    capsys.readouterr()

    code = _train(tiny_yaml, tmp_path / "wide", 1, *init, "--set", "model.width=32")
    _one_line_error(capsys, code, "another model size")
    assert not (tmp_path / "wide" / "last.safetensors").exists()
    code = _train(tiny_yaml, tmp_path / "none", 1, "--init-from", str(tmp_path / "nothing"))
    _one_line_error(capsys, code, "checkpoint not found")


@pytest.mark.parametrize("kept", ["", "linear map"])
def test_the_bundled_networks_weights_grow_by_pose_context_unchanged(kept):
    """At the bundled model's real size: its weights without ``pose_context`` (or with its
    per-frame map only), grown to the bundled network, compute what the smaller network
    computes with those weights."""
    from dataclasses import replace

    from htpose.checkpoint import load_grown_weights, load_weights, model_state
    from htpose.cli import _init_checkpoint
    from htpose.model.denoiser import build_denoiser

    path = _init_checkpoint("bundled")
    tensors, cfg, _ = read_checkpoint(path)
    assert cfg.model.pose_context and cfg.model.pose_context_hidden  # what is tested here
    linear = ("pose_context.weight", "pose_context.bias")
    state = model_state(tensors)
    dropped = [k for k in state if k.startswith("pose_context.") and not (kept and k in linear)]
    state = {k: v for k, v in state.items() if k not in dropped}
    smaller = replace(cfg.model, pose_context=bool(kept), pose_context_hidden=0)
    plain = build_denoiser(replace(smaller, pose_context_frames=1)).eval()
    load_weights(plain, state, path)
    grown = build_denoiser(cfg.model).eval()
    assert sorted(load_grown_weights(grown, state, path)) == sorted(dropped)
    _assert_same_outputs(grown, plain, frames=81, levels=[999, 999])


@pytest.mark.parametrize("linear_before", [False, True])
def test_a_temporal_pose_context_grows_unchanged_and_then_learns(linear_before):
    """Grown by the temporal branch of ``pose_context`` (from a model with the per-frame map
    or without any), the model first computes what it did (the branch's output layer starts
    at zero), yet the branch's hidden layer keeps its fresh values, so the first backward
    pass gives the output layer a gradient (two zeroed layers never would)."""
    from htpose.checkpoint import load_grown_weights
    from htpose.model.denoiser import Denoiser, ModelConfig

    torch.manual_seed(0)
    size = {"frames": 9, "width": 16, "depth": 1, "heads": 2, "drop_path": 0.0}
    small = Denoiser(ModelConfig(**size, pose_context=linear_before)).eval()
    if linear_before:  # a trained map, not zeros, must survive the growth
        torch.nn.init.normal_(small.pose_context.weight)
    temporal = {"pose_context_hidden": 8, "pose_context_frames": 3}
    grown = Denoiser(ModelConfig(**size, pose_context=True, **temporal)).eval()
    missing = load_grown_weights(grown, small.state_dict(), "ckpt")
    branch = [
        f"pose_context.{layer}.{p}" for layer in ("hidden", "out") for p in ("bias", "weight")
    ]
    linear = [] if linear_before else ["pose_context.bias", "pose_context.weight"]
    assert sorted(missing) == sorted(linear + branch)
    assert grown.pose_context.hidden.weight.abs().max() > 0
    assert grown.pose_context.out.weight.abs().max() == 0
    _assert_same_outputs(grown, small, frames=9, levels=[0, 500, 999])
    x, y = torch.randn(2, 9, 17, 2), torch.randn(2, 9, 17, 3)
    grown(y, torch.tensor([3, 999]), grown.encode_condition(x)).square().sum().backward()
    assert grown.pose_context.out.weight.grad.abs().max() > 0


@pytest.mark.parametrize("size", ["tiny", "bundled"])
def test_a_temporal_branch_widens_to_more_frames_unchanged(size):
    """A branch over more frames, grown from one over fewer (its kernel centred in zeros),
    first computes what the narrower one did, and its new taps then get a gradient; a
    kernel cannot shrink."""
    from dataclasses import replace

    from htpose.checkpoint import load_grown_weights, model_state
    from htpose.cli import _init_checkpoint
    from htpose.errors import CheckpointError
    from htpose.model.denoiser import Denoiser, ModelConfig, build_denoiser

    torch.manual_seed(1)
    if size == "tiny":
        cfg = ModelConfig(frames=9, width=16, depth=1, heads=2, drop_path=0.0, pose_context=True,
                          pose_context_hidden=8, pose_context_frames=3)  # fmt: skip
        narrow = Denoiser(cfg).eval()
        torch.nn.init.normal_(narrow.pose_context.out.weight)  # a trained branch, not zeros
        state, wider = narrow.state_dict(), 7
    else:
        tensors, bundled, _ = read_checkpoint(_init_checkpoint("bundled"))
        cfg, state = bundled.model, model_state(tensors)
        narrow, wider = build_denoiser(cfg).eval(), 3 * cfg.pose_context_frames
        narrow.load_state_dict(state)
    grown = build_denoiser(replace(cfg, pose_context_frames=wider)).eval()
    assert load_grown_weights(grown, state, "ckpt") == ["pose_context.hidden.weight"]
    kernel = grown.pose_context.hidden.weight
    assert kernel.shape[-1] == wider
    _assert_same_outputs(grown, narrow, frames=cfg.frames, levels=[0, 999])
    x, y = torch.randn(2, cfg.frames, 17, 2), torch.randn(2, cfg.frames, 17, 3)
    grown(y, torch.tensor([3, 999]), grown.encode_condition(x)).square().sum().backward()
    assert kernel.grad[..., 0].abs().max() > 0  # the outermost new tap learns
    with pytest.raises(CheckpointError, match="does not grow"):
        load_grown_weights(narrow, grown.state_dict(), "ckpt")


def test_only_the_named_parameters_may_be_grown():
    from htpose.checkpoint import load_grown_weights
    from htpose.errors import CheckpointError
    from htpose.model.denoiser import Denoiser, ModelConfig

    small = Denoiser(ModelConfig(frames=9, width=16, depth=1, heads=2))
    grown = Denoiser(ModelConfig(frames=9, width=16, depth=1, heads=2, pose_context=True))
    state = {k: v for k, v in small.state_dict().items() if k != "cond_embed.weight"}
    with pytest.raises(CheckpointError, match="missing 'cond_embed.weight'"):
        load_grown_weights(grown, state, "ckpt")
    with pytest.raises(CheckpointError, match="unexpected 'pose_context.weight'"):
        load_grown_weights(small, grown.state_dict(), "ckpt")  # shrinking is refused
