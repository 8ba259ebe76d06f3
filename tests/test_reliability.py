"""Faults during training (kills, full disks, damaged files) and multi-process training."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from htpose.checkpoint import load_model, read_checkpoint
from htpose.cli import main


def _yaml(tmp_path, tiny_config, small_cmu, cameras_path, **train) -> str:
    cfg = tiny_config(str(small_cmu), str(cameras_path))
    cfg["train"].update(train)
    path = tmp_path / f"tiny_{len(list(tmp_path.glob('tiny_*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _train(config: str, out, *extra: str) -> int:
    return main(["train", "--config", config, "--out", str(out), "--no-progress", *extra])


def _weights(path) -> dict[str, torch.Tensor]:
    tensors, _, _ = read_checkpoint(path)
    return {k: v for k, v in tensors.items() if not k.startswith("optim/")}


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _log_steps(run) -> list[int]:
    return [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]


def _torchrun_train(config: str, out) -> subprocess.CompletedProcess:
    """``htpose train`` as a two-process torchrun job (gloo on the CPU)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", "htpose", "train", "--config", config]
    command += ["--out", str(out), "--no-progress"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _spawn_train(config: str, out) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "htpose",
            "train",
            "--config",
            config,
            "--out",
            str(out),
            "--no-progress",
            "--threads",
            "1",
            "--resume",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_after_checkpoint(proc: subprocess.Popen, run, min_step: int, rng: random.Random) -> int:
    """SIGKILL the run at a random moment after its checkpoint passed ``min_step``."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"training ended before it could be killed: {proc.stderr.read()}")
        try:
            step = read_checkpoint(run / "last.safetensors")[2]["step"]
        except Exception:
            step = -1
        if step >= min_step:
            break
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return step


def test_sigkill_at_random_moments_then_resume_matches_uninterrupted(
    tmp_path, tiny_config, small_cmu, cameras_path
):
    steps = 400
    config = _yaml(
        tmp_path,
        tiny_config,
        small_cmu,
        cameras_path,
        steps=steps,
        checkpoint_every=3,
        log_every=1,
        val_every=50,
    )
    whole = tmp_path / "whole"
    assert _train(config, whole, "--threads", "1") == 0

    killed = tmp_path / "killed"
    rng = random.Random(7)
    for min_step in (30, 150):
        _kill_after_checkpoint(_spawn_train(config, killed), killed, min_step, rng)
        # Whatever the moment, a readable checkpoint at least that recent is on disk
        # (`previous` when the kill fell between retiring `last` and writing the new one).
        steps_on_disk = []
        for name in ("last.safetensors", "previous.safetensors"):
            if (killed / name).exists():
                steps_on_disk.append(read_checkpoint(killed / name)[2]["step"])
        assert max(steps_on_disk) >= min_step
    assert _train(config, killed, "--resume", "--threads", "1") == 0

    _assert_same(_weights(whole / "model.safetensors"), _weights(killed / "model.safetensors"))
    # The log has each step once, in order: lines written after the last checkpoint
    # of a killed run are replaced by the resumed run's.
    assert _log_steps(killed) == list(range(1, steps + 1))
    assert not list(killed.glob(".*.tmp"))


def test_full_disk_is_reported_and_keeps_the_last_good_checkpoint(
    tmp_path, tiny_config, small_cmu, cameras_path, monkeypatch, capsys
):
    config = _yaml(tmp_path, tiny_config, small_cmu, cameras_path, steps=6, checkpoint_every=2)
    run = tmp_path / "run"
    assert _train(config, run, "--steps", "2") == 0
    good = _weights(run / "last.safetensors")

    import htpose.checkpoint as checkpoint_module

    real_save = checkpoint_module.save_file

    def save_then_run_out_of_space(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as fh:  # half the file made it to disk
            fh.truncate(os.path.getsize(filename) // 2)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_module, "save_file", save_then_run_out_of_space)
    code = _train(config, run, "--resume")
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("htpose: error:") and "No space left" in err, err
    assert "\n" not in err
    monkeypatch.undo()

    # last.safetensors is still the good one, no temporary file is left, and training
    # resumes from it.
    assert not list(run.glob(".*.tmp"))
    tensors, _, meta = read_checkpoint(run / "last.safetensors")
    assert meta["step"] == 2
    _assert_same(good, {k: v for k, v in tensors.items() if not k.startswith("optim/")})
    assert _train(config, run, "--resume") == 0
    assert read_checkpoint(run / "model.safetensors")[2]["step"] == 6


def test_damaged_last_checkpoint_falls_back_to_previous(
    tmp_path, tiny_config, small_cmu, cameras_path, capsys
):
    config = _yaml(tmp_path, tiny_config, small_cmu, cameras_path, steps=6, checkpoint_every=2)
    whole, run = tmp_path / "whole", tmp_path / "run"
    assert _train(config, whole) == 0
    assert _train(config, run, "--stop-at", "4") == 0
    assert read_checkpoint(run / "previous.safetensors")[2]["step"] == 2
    raw = (run / "last.safetensors").read_bytes()
    (run / "last.safetensors").write_bytes(raw[: len(raw) // 3])
    assert _train(config, run, "--resume") == 0
    assert "resuming from previous.safetensors" in capsys.readouterr().err
    _assert_same(_weights(whole / "model.safetensors"), _weights(run / "model.safetensors"))


def test_unwritable_run_folder_is_a_one_line_error(
    tmp_path, tiny_config, small_cmu, cameras_path, capsys
):
    config = _yaml(tmp_path, tiny_config, small_cmu, cameras_path)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert _train(config, blocker / "run") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("htpose: error: cannot create run folder") and "\n" not in err


def test_seed_makes_training_and_sampling_reproducible(
    tmp_path, tiny_config, small_cmu, cameras_path
):
    config = _yaml(tmp_path, tiny_config, small_cmu, cameras_path, steps=3)
    runs = {}
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        assert _train(config, tmp_path / name, "--seed", seed) == 0
        runs[name] = _weights(tmp_path / name / "model.safetensors")
    _assert_same(runs["a"], runs["b"])
    assert any(not torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])

    results = []
    for seed in ("1", "1", "2"):
        out = tmp_path / f"eval_{len(results)}.json"
        args = [
            "evaluate",
            "--checkpoint",
            str(tmp_path / "a" / "model.safetensors"),
            "--hypotheses",
            "2",
            "--steps",
            "2",
            "--seed",
            seed,
            "--json",
            str(out),
            "--no-progress",
        ]
        assert main(args) == 0
        results.append(json.loads(out.read_text())["mpjpe_mm"])
    assert results[0] == results[1] != results[2]


def test_pickled_checkpoint_needs_trust_and_is_read_weights_only(
    tmp_path, tiny_config, small_cmu, cameras_path, capsys
):
    config = _yaml(tmp_path, tiny_config, small_cmu, cameras_path, steps=2)
    assert _train(config, tmp_path / "run") == 0
    model, _, _ = load_model(tmp_path / "run" / "model.safetensors")
    legacy = tmp_path / "legacy.pt"
    torch.save(
        {"epoch": 3, "model_pos": {f"module.{k}": v for k, v in model.state_dict().items()}}, legacy
    )
    base = [
        "evaluate",
        "--checkpoint",
        str(legacy),
        "--hypotheses",
        "1",
        "--steps",
        "1",
        "--no-progress",
    ]
    assert main(base) == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert main([*base, "--trust-pickle"]) == 2
    assert "needs --config" in capsys.readouterr().err
    trusted, _, _ = load_model(
        legacy, trust_pickle=True, config=read_checkpoint(tmp_path / "run" / "model.safetensors")[1]
    )
    for (k, v), (k2, v2) in zip(model.state_dict().items(), trusted.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    # Something that is not a state dict, even trusted, is refused.
    torch.save([1, 2, 3], legacy)
    assert main([*base, "--trust-pickle", "--config", config]) == 2
    assert "no state dict" in capsys.readouterr().err


def test_nan_weights_are_refused(tmp_path, tiny_config, small_cmu, cameras_path, capsys):
    config = _yaml(tmp_path, tiny_config, small_cmu, cameras_path, steps=2)
    assert _train(config, tmp_path / "run") == 0
    model, cfg, _ = load_model(tmp_path / "run" / "model.safetensors")
    with torch.no_grad():
        next(model.parameters())[0] = float("nan")
    from htpose.checkpoint import save_checkpoint

    bad = tmp_path / "bad.safetensors"
    save_checkpoint(bad, model, cfg)
    assert main(["evaluate", "--checkpoint", str(bad), "--no-progress"]) == 2
    assert "NaN" in capsys.readouterr().err


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(
    tmp_path, tiny_config, small_cmu, cameras_path
):
    steps = 3
    config = _yaml(tmp_path, tiny_config, small_cmu, cameras_path, steps=steps, batch_size=4)
    single = tmp_path / "single"
    assert _train(config, single) == 0

    ddp = tmp_path / "ddp"
    proc = _torchrun_train(config, ddp)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = [json.loads(x) for x in (ddp / "metrics.jsonl").read_text().splitlines()]
    # Both ranks ended with bit-identical weights (checked across ranks by the job itself).
    assert log[-1]["world_size"] == 2 and log[-1]["ddp_max_weight_diff"] == 0.0
    # Same global batch: the losses (means over both shards) match the single process.
    ref = [json.loads(x) for x in (single / "metrics.jsonl").read_text().splitlines()]
    for r, d in zip(ref, log[:steps]):
        assert r["step"] == d["step"] and r["loss_mm"] == pytest.approx(d["loss_mm"], rel=1e-5)
    # Weights agree up to the float order of the gradient all-reduce (Adam can flip the
    # sign of an update whose gradient is ~0, hence a bound of a few learning rates).
    a, b = _weights(single / "model.safetensors"), _weights(ddp / "model.safetensors")
    diff = torch.cat([(a[k] - b[k]).abs().reshape(-1) for k in a])
    assert diff.max() < 2e-3 * steps
    assert (diff > 1e-5).float().mean() < 0.01


def test_global_batch_must_split_evenly_over_processes(
    tmp_path, tiny_config, small_cmu, cameras_path
):
    config = _yaml(tmp_path, tiny_config, small_cmu, cameras_path, batch_size=3)
    proc = _torchrun_train(config, tmp_path / "r")
    assert proc.returncode != 0
    assert "must be divisible by the 2 processes" in proc.stderr


class _Pair(torch.nn.Module):
    """Two layers registered in either order (a refactor that keeps every weight)."""

    def __init__(self, swapped: bool) -> None:
        super().__init__()
        first, second = ("b", "a") if swapped else ("a", "b")
        setattr(self, first, torch.nn.Linear(3, 4) if first == "a" else torch.nn.Linear(4, 2))
        setattr(self, second, torch.nn.Linear(3, 4) if second == "a" else torch.nn.Linear(4, 2))


def _stepped(model: torch.nn.Module) -> torch.optim.Optimizer:
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    model.b(model.a(torch.randn(5, 3))).square().mean().backward()
    opt.step()
    return opt


def test_optimizer_state_follows_parameter_names_across_registration_orders(tmp_path):
    from htpose.train import _optimizer_tensors, _restore_optimizer

    torch.manual_seed(0)
    saved = _Pair(swapped=False)
    tensors, groups = _optimizer_tensors(_stepped(saved), saved)
    assert "optim/a.weight/exp_avg" in tensors
    loaded = _Pair(swapped=True)
    loaded.load_state_dict(saved.state_dict())
    opt = torch.optim.AdamW(loaded.parameters(), lr=0.01)
    _restore_optimizer(opt, loaded, tensors, groups, tmp_path / "last.safetensors")
    for name, p in loaded.named_parameters():
        torch.testing.assert_close(opt.state[p]["exp_avg"], tensors[f"optim/{name}/exp_avg"])


def test_legacy_optimizer_state_in_another_order_is_refused_in_one_line(tmp_path):
    from htpose.errors import CheckpointError
    from htpose.train import _optimizer_tensors, _restore_optimizer

    saved = _Pair(swapped=False)
    opt = _stepped(saved)
    tensors, groups = _optimizer_tensors(opt, saved)
    order = [name for name, _ in saved.named_parameters()]
    legacy = {  # the format before names: optim/<position>/<state>
        k.replace(f"optim/{n}/", f"optim/{order.index(n)}/"): v
        for k, v in tensors.items()
        for n in order
        if k.startswith(f"optim/{n}/")
    }
    same = _Pair(swapped=False)
    _restore_optimizer(torch.optim.AdamW(same.parameters()), same, legacy, groups, tmp_path)
    other = _Pair(swapped=True)
    with pytest.raises(CheckpointError, match="has shape"):
        _restore_optimizer(torch.optim.AdamW(other.parameters()), other, legacy, groups, tmp_path)
    with pytest.raises(CheckpointError, match="unknown parameter"):
        _restore_optimizer(
            torch.optim.AdamW(other.parameters()), other,
            {"optim/c.weight/exp_avg": torch.zeros(1)}, groups, tmp_path,
        )  # fmt: skip


def _six_step_run_stopped_at_four(tmp_path, tiny_config, small_cmu, cameras_path):
    """A config of six steps (checkpoints every 2, a log line every step) and its run folder,
    trained to step 4: what the resume tests below continue."""
    config = _yaml(
        tmp_path, tiny_config, small_cmu, cameras_path, steps=6, checkpoint_every=2, log_every=1
    )
    run = tmp_path / "run"
    assert _train(config, run, "--stop-at", "4") == 0
    return config, run


def test_cpu_time_is_logged_and_carried_across_a_resume(
    tmp_path, tiny_config, small_cmu, cameras_path
):
    config, run = _six_step_run_stopped_at_four(tmp_path, tiny_config, small_cmu, cameras_path)
    first = read_checkpoint(run / "last.safetensors")[2]
    assert _train(config, run, "--resume") == 0
    final = read_checkpoint(run / "model.safetensors")[2]
    assert 0 < first["cpu_seconds"] < final["cpu_seconds"]
    assert first["train_seconds"] < final["train_seconds"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    cpu = [r["cpu_seconds"] for r in records]
    assert cpu == sorted(cpu) and cpu[-1] == pytest.approx(final["cpu_seconds"], abs=0.01)


def test_a_tampered_metrics_log_is_trimmed_on_resume_without_an_error(
    tmp_path, tiny_config, small_cmu, cameras_path
):
    config, run = _six_step_run_stopped_at_four(tmp_path, tiny_config, small_cmu, cameras_path)
    log = run / "metrics.jsonl"
    junk = ["[1, 2]", "7", '{"step": "x"}', '{"step": 1, "val_mpjpe_mm": {}}',
            '{"step": ' + "9" * 5000 + "}", "[" * 5000, '{"step": 2, "lo']  # fmt: skip
    log.write_bytes(log.read_bytes() + ("\n".join(junk) + "\n").encode() + b"\xff\xfe\n")
    assert _train(config, run, "--resume") == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(isinstance(r, dict) and isinstance(r["step"], int) for r in records)
    assert [r["step"] for r in records if r["step"] > 4] == [5, 6]


AUGMENTED = (
    "data.cameras.enabled=true", "data.cameras.distortion_prob=0.5", "data.pose.tilt_prob=0.5",
    "data.pose.tilt_from=0.4", "data.pose.scale_prob=0.5", "data.noise_prob=0.5",
    "data.occlusion_prob=0.5", "data.flip_prob=0.5", "diffusion.high_noise_share=0.5",
)  # fmt: skip


@pytest.mark.parametrize("augmented", [False, True])
def test_loader_workers_make_the_same_run_and_resume_the_same(
    tmp_path, tiny_config, small_cmu, cameras_path, augmented
):
    """Batches made ahead in workers, and a run resumed half-way, draw exactly the windows,
    cameras, tilts, noise and timesteps of a plain run (every draw seeded per step)."""
    config = _yaml(tmp_path, tiny_config, small_cmu, cameras_path, steps=5, checkpoint_every=2)
    sets = [arg for item in (AUGMENTED if augmented else ()) for arg in ("--set", item)]
    assert _train(config, tmp_path / "here", *sets) == 0
    workers = (*sets, "--set", "train.loader_workers=2")
    assert _train(config, tmp_path / "ahead", *workers) == 0
    assert _train(config, tmp_path / "split", *workers, "--stop-at", "3") == 0
    assert _train(config, tmp_path / "split", *workers, "--resume") == 0
    reference = _weights(tmp_path / "here" / "model.safetensors")
    for name in ("ahead", "split"):
        _assert_same(reference, _weights(tmp_path / name / "model.safetensors"))
    losses = {
        name: [json.loads(x).get("loss_mm") for x in (tmp_path / name / "metrics.jsonl").open()]
        for name in ("here", "ahead", "split")
    }
    assert losses["here"] == losses["ahead"] == losses["split"]


def test_minutes_sizes_the_run_and_records_the_steps(
    tmp_path, tiny_config, small_cmu, cameras_path, capsys
):
    config = _yaml(
        tmp_path, tiny_config, small_cmu, cameras_path, steps=10**6, warmup_steps=50, log_every=5
    )
    run = tmp_path / "run"
    assert _train(config, run, "--minutes", "0.05") == 0
    chosen = [r for r in map(json.loads, (run / "metrics.jsonl").open()) if "steps_chosen" in r]
    assert len(chosen) == 1 and chosen[0]["step"] == 40
    steps = chosen[0]["steps_chosen"]
    assert 40 <= steps < 10**6
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"] == steps
    assert read_checkpoint(run / "model.safetensors")[2]["step"] == steps
    assert "steps fit the time given" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, warmup",
    [
        (("--minutes", "0"), 50),
        (("--minutes", "nan"), 50),
        (("--minutes", "1", "--stop-at", "3"), 50),
        (("--minutes", "1"), 10),
    ],
)
def test_bad_time_budgets_are_one_line_errors(
    tmp_path, tiny_config, small_cmu, cameras_path, capsys, extra, warmup
):
    config = _yaml(tmp_path, tiny_config, small_cmu, cameras_path, warmup_steps=warmup)
    assert _train(config, tmp_path / "run", *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("htpose: error:") and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_minutes_refuses_to_resize_a_run_in_progress(
    tmp_path, tiny_config, small_cmu, cameras_path, capsys
):
    config = _yaml(tmp_path, tiny_config, small_cmu, cameras_path, steps=60, warmup_steps=50)
    run = tmp_path / "run"
    assert _train(config, run, "--stop-at", "2") == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert _train(config, run, "--resume", "--minutes", "1") == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
