"""Hostile input: nothing executes, nothing explodes, nothing is overwritten (issue 11)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml

from htpose.cli import main

MARKER = "htpose_pickle_ran"


class _Payload:
    """Unpickling this writes a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "ran"))


def _one_line_error(capsys, code: int, *match: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("htpose: error:"), err
    assert "\n" not in err and "Traceback" not in err
    for m in match:
        assert m in err, err
    return err


def _crafted_npz(path: Path, marker: Path, key: str = "positions_3d") -> Path:
    arr = np.empty((), dtype=object)
    arr[()] = _Payload(marker)
    np.savez(path, **{key: arr})
    return path


def _keypoints(tmp_path: Path, frames: int = 60, scale: float = 1.0) -> Path:
    rng = np.random.default_rng(0)
    base = np.array([[500, 500]]) + rng.normal(0, 60, (17, 2))
    kp = base[None] + rng.normal(0, 2, (frames, 17, 2))
    path = tmp_path / "kp.npz"
    np.savez(path, keypoints=kp * scale, fps=np.float64(50), width=1000, height=1000)
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["convert-h36m", "{x}", "--out", "{out}"],
        ["evaluate", "--data", "{x}"],
        ["evaluate", "--data", "{x}", "--keypoints", "{x}"],
        ["lift", "{x}", "-o", "{out}", "--width", "100", "--height", "100"],
        ["render", "{x}", "-o", "{tmp}/r.gif"],
    ],
)
def test_a_crafted_pickle_never_runs(tmp_path, capsys, command):
    marker = tmp_path / MARKER
    crafted = _crafted_npz(tmp_path / "crafted.npz", marker)
    args = [a.format(x=crafted, out=tmp_path / "out.npz", tmp=tmp_path) for a in command]
    code = main(args)
    assert not marker.exists(), "unpickling ran code"
    _one_line_error(capsys, code)
    assert not (tmp_path / "out.npz").exists()


def test_convert_h36m_needs_allow_pickle_and_reads_nothing_without_it(tmp_path, capsys):
    marker = tmp_path / MARKER
    crafted = _crafted_npz(tmp_path / "crafted.npz", marker)
    out = tmp_path / "h36m.npz"
    _one_line_error(
        capsys, main(["convert-h36m", str(crafted), "--out", str(out)]), "--allow-pickle"
    )
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize(
    "flag, value, match",
    [
        ("--fps", "1e-6", "frame rate"),
        ("--fps", "nan", "frame rate"),
        ("--fps", "0", "frame rate"),
        ("--fps", "-30", "frame rate"),
        ("--fps", "inf", "frame rate"),
        ("--fps", "1e9", "frame rate"),
        ("--focal", "nan", "focal"),
        ("--focal", "-5", "focal"),
        ("--focal", "1e30", "focal"),
        ("--threshold", "nan", "threshold"),
        ("--threshold", "2", "threshold"),
        ("--hypotheses", "1001", "hypotheses"),
        ("--steps", "5000", "steps"),
    ],
)
def test_lift_refuses_bad_numbers(tmp_path, capsys, flag, value, match):
    out = tmp_path / "out.npz"
    code = main(["lift", str(_keypoints(tmp_path)), "-o", str(out), flag, value, "--no-progress"])
    _one_line_error(capsys, code, match)
    assert not out.exists()


def test_tiny_fps_in_the_file_is_caught_by_the_memory_budget(tmp_path, capsys):
    path = tmp_path / "slow.npz"
    np.savez(path, keypoints=np.full((60, 17, 2), 500.0), fps=np.float64(0.2), width=1000,
             height=1000)  # fmt: skip
    args = ["lift", str(path), "-o", str(tmp_path / "o.npz"), "--max-memory", "16M"]
    _one_line_error(capsys, main(args), "budget", "0.2 fps")


def test_keypoints_far_outside_the_image_are_refused(tmp_path, capsys):
    args = ["lift", str(_keypoints(tmp_path, scale=1e27)), "-o", str(tmp_path / "o.npz")]
    _one_line_error(capsys, main(args), "far outside")


def test_many_hypotheses_shrink_the_batch_or_fail_cleanly(tmp_path, capsys):
    args = ["lift", str(_keypoints(tmp_path)), "-o", str(tmp_path / "o.npz"), "--hypotheses",
            "1000", "--max-memory", "16M", "--no-progress"]  # fmt: skip
    _one_line_error(capsys, main(args), "budget")


@pytest.mark.parametrize("kind", ["json", "yaml"])
def test_a_device_given_as_a_file_is_refused(tmp_path, capsys, kind):
    link = tmp_path / f"zero.{kind}"
    os.symlink("/dev/zero", link)
    if kind == "json":
        code = main(["lift", str(link), "-o", str(tmp_path / "o.npz"), "--format", "coco"])
    else:
        code = main(["train", "--config", str(link), "--out", str(tmp_path / "run")])
    _one_line_error(capsys, code, "not a regular file")


def test_a_symlink_loop_and_a_folder_are_refused(tmp_path, capsys):
    loop = tmp_path / "loop.json"
    os.symlink(loop, loop)
    _one_line_error(capsys, main(["lift", str(loop), "-o", str(tmp_path / "o.npz"),
                                  "--format", "coco"]))  # fmt: skip
    folder = tmp_path / "dir.json"
    folder.mkdir()
    _one_line_error(capsys, main(["lift", str(folder), "-o", str(tmp_path / "o.npz"),
                                  "--format", "coco"]), "folder")  # fmt: skip


def test_deep_json_is_refused_without_recursion(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    _one_line_error(capsys, main(["lift", str(deep), "-o", str(tmp_path / "o.npz")]), "nests")


def _huge_coco(tmp_path: Path, t: int, k: int, axis: int, value: float) -> tuple[Path, str]:
    entries = [_coco_entry(i) for i in range(10)]
    entries[t]["keypoints"][3 * k + axis] = value
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(entries))
    return path, f"entry {t} keypoints: point {k} lies"


def _huge_yolo(tmp_path: Path, t: int, k: int, axis: int, value: float) -> tuple[Path, str]:
    folder = tmp_path / "yolo"
    folder.mkdir()
    for i in range(10):
        row = [0.0, 0.5, 0.5, 0.2, 0.5] + [0.4 + 0.01 * i, 0.5, 0.9] * 17
        if i == t:
            row[5 + 3 * k + axis] = value
        (folder / f"frame_{i:03d}.txt").write_text(" ".join(map(repr, row)) + "\n")
    return folder, f"frame_{t:03d}.txt: line 1: point {k} lies"


@pytest.mark.parametrize("write", [_huge_coco, _huge_yolo], ids=["coco", "yolo"])
@pytest.mark.parametrize("value", [1e12, -1e300, 1e308])
def test_huge_coordinates_are_one_clean_line(tmp_path, capsys, write, value):
    """Coordinates no image has (whose sums overflow) are refused where they are read, before
    tracking or layout arithmetic could print a numpy warning beside the error."""
    rng = np.random.default_rng(int(abs(np.log10(abs(value)))))
    t, k, axis = int(rng.integers(1, 10)), int(rng.integers(17)), int(rng.integers(2))
    path, where = write(tmp_path, t, k, axis, value)
    code = main(["lift", str(path), "-o", str(tmp_path / "o.npz"), "--width", "1000",
                 "--height", "1000"])  # fmt: skip
    _one_line_error(capsys, code, where, "not an image position")
    assert not (tmp_path / "o.npz").exists()


def test_infinite_coordinates_count_as_missing_joints(tmp_path, capsys):
    """What Python's json writes for a lost point (Infinity) is a missing joint, filled in."""
    entries = [_coco_entry(i, frame=i) for i in range(10)]
    entries[4]["keypoints"][3 * 9] = float("inf")
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(entries))
    out = tmp_path / "o.npz"
    code = main(["lift", str(path), "-o", str(out), "--width", "1000", "--height", "1000",
                 "--hypotheses", "1", "--steps", "1", "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert np.load(out)["filled"].sum() >= 1


@pytest.mark.parametrize("digits", [4301, 20_000])
def test_json_numbers_past_python_digit_limit_are_clean_errors(tmp_path, capsys, digits):
    # Python refuses to parse integers this long with a ValueError, not a JSONDecodeError.
    entry = _coco_entry(0)
    text = json.dumps([entry]).replace("400.0", "4" * digits, 1)
    path = tmp_path / "coco.json"
    path.write_text(text)
    code = main(["lift", str(path), "-o", str(tmp_path / "o.npz"), "--width", "1000",
                 "--height", "1000"])  # fmt: skip
    _one_line_error(capsys, code, "not valid JSON")


@pytest.mark.parametrize(
    "htpose_header", ["[" * 100_000 + "]" * 100_000, "1" * 6000], ids=["deep", "long-int"]
)
def test_a_checkpoint_header_that_breaks_the_json_parser_is_a_clean_error(
    tmp_path, capsys, htpose_header
):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "evil.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"htpose": htpose_header})
    code = main(["lift", str(_keypoints(tmp_path)), "-o", str(tmp_path / "o.npz"),
                 "--checkpoint", str(path)])  # fmt: skip
    _one_line_error(capsys, code, "header is corrupt")


def test_a_utf8_byte_order_mark_is_accepted(tmp_path, capsys):
    frames = [_coco_entry(i, frame=i) for i in range(30)]
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(frames).encode())
    out = tmp_path / "o.npz"
    code = main(["lift", str(path), "-o", str(out), "--width", "1000", "--height", "1000",
                 "--hypotheses", "1", "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert np.load(out)["joints_3d"].shape == (30, 17, 3)


def test_a_multi_line_library_message_is_printed_on_one_line(tmp_path, capsys):
    # numpy's refusal of an oversized .npy header spans several lines.
    path = tmp_path / "kp.npy"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (10, 17, 2), }"
    header += " " * 30_000 + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    code = main(["lift", str(path), "-o", str(tmp_path / "o.npz"), "--width", "1000",
                 "--height", "1000"])  # fmt: skip
    _one_line_error(capsys, code)


def _coco_entry(image_id, frame=0):
    kp = []
    for j in range(17):
        kp += [400.0 + 10 * j + frame, 300.0 + 20 * j, 0.9]
    return {"image_id": image_id, "keypoints": kp, "score": 1.0}


@pytest.mark.parametrize(
    "doc, match",
    [
        ({"images": 5, "annotations": [_coco_entry(1)]}, "'images'"),
        ({"images": [{"width": "wide", "height": 3}], "annotations": [_coco_entry(1)]}, "width"),
        ({"images": [{"width": True, "height": 3}], "annotations": [_coco_entry(1)]}, "width"),
        ([{"frame_id": 0, "instances": {"keypoints": 1}}], "instances"),
        ([{"frame_id": 0, "instances": [5]}], "instance"),
        ([_coco_entry(True), _coco_entry(False)], "frame id"),
        ([_coco_entry([1])], "frame id"),
        ([_coco_entry(1), _coco_entry("2.jpg")], "mix"),
    ],
)
def test_coco_readers_check_json_types(tmp_path, capsys, doc, match):
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(doc))
    code = main(["lift", str(path), "-o", str(tmp_path / "o.npz"), "--width", "1000",
                 "--height", "1000"])  # fmt: skip
    _one_line_error(capsys, code, match)


def test_alphapose_file_names_are_ordered_by_number(tmp_path):
    from htpose.data.keypoints import read_keypoints

    names = [f"{i}.jpg" for i in range(12)]
    order = np.random.default_rng(0).permutation(12)
    path = tmp_path / "alphapose.json"
    path.write_text(json.dumps([_coco_entry(names[i], frame=int(i)) for i in order]))
    kp = read_keypoints(path)
    # Frame i was drawn i pixels to the right: time must come out in order.
    assert np.all(np.diff(kp.pixels[:, 1, 0]) > 0)


def test_outputs_never_replace_inputs(tmp_path, capsys):
    kp = _keypoints(tmp_path)
    before = kp.read_bytes()
    _one_line_error(capsys, main(["lift", str(kp), "-o", str(kp)]), "overwrite")
    js = tmp_path / "kp.json"
    js.write_text(json.dumps([_coco_entry(i, i) for i in range(30)]))
    js_before = js.read_bytes()
    out = tmp_path / "kp.npz"
    args = ["lift", str(js), "-o", str(out), "--json", "--width", "1000", "--height", "1000"]
    _one_line_error(capsys, main(args), "overwrite")
    assert js.read_bytes() == js_before and kp.read_bytes() == before
    link = tmp_path / "hard.npz"
    os.link(kp, link)
    _one_line_error(capsys, main(["lift", str(kp), "-o", str(link)]), "overwrite")


def test_a_bad_render_name_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "out.npz"
    args = ["lift", str(_keypoints(tmp_path)), "-o", str(out), "--csv", "--render",
            str(tmp_path / "out.avi")]  # fmt: skip
    _one_line_error(capsys, main(args), ".avi")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kp.npz"]


def test_lift_writes_all_outputs_or_none(tmp_path, capsys, monkeypatch):
    from htpose.lift import LiftResult

    real = LiftResult.save

    def failing(self, path):
        if str(path).endswith(".csv"):
            raise OSError(28, "No space left on device")
        return real(self, path)

    monkeypatch.setattr(LiftResult, "save", failing)
    out = tmp_path / "out.npz"
    args = ["lift", str(_keypoints(tmp_path)), "-o", str(out), "--json", "--csv", "--hypotheses",
            "1", "--steps", "1", "--no-progress"]  # fmt: skip
    assert main(args) != 0
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kp.npz"]


def _result_file(path: Path, frames: int = 6, **replace: np.ndarray) -> Path:
    """A valid-looking lift result ``.npz`` with any field replaced."""
    from htpose.lift import LiftResult

    rng = np.random.default_rng(frames)
    joints = rng.normal(0, 0.3, (frames, 17, 3)).astype(np.float32)
    result = LiftResult(
        joints, joints[:, None].repeat(2, 1), np.full((frames, 17), 0.05, np.float32),
        np.tile([0.0, 0.0, 4.0], (frames, 1)).astype(np.float32),
        rng.uniform(0, 900, (frames, 17, 2)).astype(np.float32),
        np.ones((frames, 17), np.float32), np.zeros((frames, 17), bool), 30.0, (1000, 900),
    )  # fmt: skip
    result.save(path)
    if replace:
        np.savez(path, **{**dict(np.load(path)), **replace})
    return path


@pytest.mark.parametrize("value", [np.nan, np.inf, -1e30])
@pytest.mark.parametrize("key", ["joints_3d", "hypotheses", "root", "uncertainty",
                                 "keypoints_2d"])  # fmt: skip
def test_render_refuses_a_result_with_unusable_values(tmp_path, capsys, key, value):
    """One bad number anywhere in a result (a random element) is a clean error, not a
    matplotlib failure after the figure was begun."""
    good = dict(np.load(_result_file(tmp_path / "good.npz")))
    bad = good[key].astype(np.float64)
    bad.reshape(-1)[np.random.default_rng(len(key)).integers(bad.size)] = value
    path = _result_file(tmp_path / "r.npz", **{key: bad})
    out = tmp_path / "r.gif"
    _one_line_error(capsys, main(["render", str(path), "-o", str(out)]), repr(key))
    assert not out.exists()


@pytest.mark.parametrize(
    "field, value, match",
    [("image_size", np.array([np.nan, 3.0]), "image_size"), ("scores", np.ones(4), "scores"),
     ("filled", np.zeros((6, 3), bool), "filled"), ("fps", np.float64(1e300), "fps")],
)  # fmt: skip
def test_render_refuses_bad_side_fields(tmp_path, capsys, field, value, match):
    path = _result_file(tmp_path / "r.npz", **{field: value})
    _one_line_error(capsys, main(["render", str(path), "-o", str(tmp_path / "r.gif")]), match)


def test_render_draws_the_valid_result(tmp_path, capsys):
    out = tmp_path / "r.gif"
    assert main(["render", str(_result_file(tmp_path / "r.npz")), "-o", str(out)]) == 0
    assert out.stat().st_size > 0


def test_render_does_not_overwrite_its_input(tmp_path, capsys):
    kp = _keypoints(tmp_path)
    out = tmp_path / "res.npz"
    assert main(["lift", str(kp), "-o", str(out), "--hypotheses", "1", "--steps", "1",
                 "--no-progress"]) == 0  # fmt: skip
    before = out.read_bytes()
    capsys.readouterr()
    code = main(["render", str(out), "-o", str(tmp_path / "r.gif"), "--uncertainty", str(out)])
    _one_line_error(capsys, code, "overwrite")
    assert out.read_bytes() == before and not (tmp_path / "r.gif").exists()


def test_failing_training_leaves_no_files(tmp_path, capsys, tiny_config, cameras_path):
    cfg = tiny_config(str(tmp_path / "missing.npz"), str(cameras_path))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    _one_line_error(capsys, main(["train", "--config", str(path), "--out", str(run)]))
    assert not run.exists()


def test_training_that_diverges_stops_and_keeps_the_last_good_checkpoint(
    tmp_path, capsys, tiny_config, small_cmu, cameras_path, monkeypatch
):
    import torch

    from htpose import train as train_mod

    cfg = tiny_config(str(small_cmu), str(cameras_path))
    cfg["train"].update(steps=6, checkpoint_every=2)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    real = train_mod.diffusion_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 4 else loss

    monkeypatch.setattr(train_mod, "diffusion_loss", poisoned)
    run = tmp_path / "run"
    code = main(["train", "--config", str(path), "--out", str(run), "--no-progress"])
    _one_line_error(capsys, code, "diverged at step 3", "last good checkpoint")
    from htpose.checkpoint import read_checkpoint

    tensors, _, meta = read_checkpoint(run / "last.safetensors")
    assert meta["step"] == 2
    assert all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())


def test_a_checkpoint_header_declaring_a_huge_model_is_refused_before_building(tmp_path, capsys):
    from safetensors.torch import save_file

    from htpose.config import Config

    cfg = Config().to_dict()
    cfg["model"]["frames"] = 1_500_000_000
    import torch

    path = tmp_path / "huge.safetensors"
    header = {"format": 1, "config": cfg, "meta": {}}
    save_file({"x": torch.zeros(1)}, str(path), metadata={"htpose": json.dumps(header)})
    code = main(["lift", str(_keypoints(tmp_path)), "-o", str(tmp_path / "o.npz"),
                 "--checkpoint", str(path)])  # fmt: skip
    _one_line_error(capsys, code, "model.frames")


def test_existing_training_runs_are_not_overwritten(tmp_path, capsys, tiny_config, small_cmu,
                                                    cameras_path):  # fmt: skip
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(tiny_config(str(small_cmu), str(cameras_path))))
    run = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(run), "--no-progress"]) == 0
    before = (run / "last.safetensors").read_bytes()
    capsys.readouterr()
    code = main(["train", "--config", str(path), "--out", str(run), "--no-progress"])
    _one_line_error(capsys, code, "already holds a training run")
    assert (run / "last.safetensors").read_bytes() == before


def test_pickle_module_is_not_imported_by_readers():
    # A guard on the design: htpose's readers never call pickle themselves.
    src = Path(__file__).resolve().parents[1] / "src" / "htpose"
    offenders = [p.name for p in src.rglob("*.py") if "pickle.load" in p.read_text()]
    assert offenders == []
    assert pickle  # the test module itself uses pickle only to craft payloads


def test_a_stray_carriage_return_in_a_csv_is_a_clean_error(tmp_path, capsys):
    path = tmp_path / "landmarks.csv"
    row = ",".join(["0.5", "0.5", "0", "1"] * 33)
    path.write_bytes(f"{row}\n{row[:20]}\r{row[20:]}\n".encode())
    code = main(["lift", str(path), "-o", str(tmp_path / "o.npz"), "--width", "100",
                 "--height", "100"])  # fmt: skip
    _one_line_error(capsys, code, "CSV")


def test_evaluate_refuses_absurd_hypotheses_before_allocating(capsys):
    _one_line_error(capsys, main(["evaluate", "--hypotheses", "1000000"]), "hypotheses")
    code = main(["evaluate", "--hypotheses", "1000", "--max-memory", "100M", "--no-progress"])
    _one_line_error(capsys, code, "budget")


@pytest.mark.parametrize(
    "argv, match",
    [
        (["export", "--onnx", "x.onnx", "--opset", "99999"], "opset"),
        (["evaluate", "--seed", "99999999999999999999999"], "seed"),
        (["evaluate", "--seed", "-5"], "seed"),
        (["lift", "kp.npz", "-o", "o.npz", "--start-frame", "-3"], "start-frame"),
    ],
)
def test_out_of_range_options_are_usage_errors(tmp_path, capsys, argv, match):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("htpose: error:") and "\n" not in err and match in err


def test_npz_fields_of_any_shape_are_clean_errors(tmp_path, capsys):
    path = tmp_path / "kp.npz"
    np.savez(path, keypoints=np.full((5, 17, 2), 500.0), fps=np.array([[30.0]]),
             width=np.array([1000, 2]), height=1000)  # fmt: skip
    _one_line_error(capsys, main(["lift", str(path), "-o", str(tmp_path / "o.npz")]), "width")
