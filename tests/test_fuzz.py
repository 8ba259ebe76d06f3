"""Property tests over every reader and the CLI: any input gives a valid result or a clear
one-line error (an :class:`HtposeError`), never another exception, a hang or a huge allocation.

``HTPOSE_FUZZ_EXAMPLES`` sets the examples per property (default 40, CI); with
``HTPOSE_FUZZ_REPORT=FILE`` the number of inputs tried per reader is written there as JSON
(``benchmarks/RELIABILITY.md`` quotes a long run).
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from htpose.checkpoint import load_model, read_checkpoint, save_checkpoint
from htpose.cli import main
from htpose.config import config_from_dict, load_config
from htpose.data.camera import load_h36m_cameras
from htpose.data.clips import read_clips
from htpose.data.h36m import read_h36m_2d, read_h36m_3d, read_keypoints_2d
from htpose.data.keypoints import read_keypoints
from htpose.data.mpi3dhp import read_3dhp
from htpose.data.sources import detect_format
from htpose.errors import HtposeError
from htpose.model.denoiser import build_denoiser

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # structured_fuzz
EXAMPLES = int(os.environ.get("HTPOSE_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=5000,  # a hang shows up as a deadline failure
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TRIED: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    target = os.environ.get("HTPOSE_FUZZ_REPORT")
    if target:
        old = json.loads(Path(target).read_text()) if Path(target).exists() else {}
        old.update(TRIED)
        Path(target).write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")


def _outcome(reader: str, read, *args, **kwargs):
    """Call a reader; only a result or an HtposeError with a one-line message may come out."""
    TRIED[reader] += 1
    try:
        return read(*args, **kwargs)
    except HtposeError as exc:
        assert str(exc) and "\n" not in str(exc), repr(exc)
        return None


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _npy_with_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    """An .npy whose header declares ``shape`` but holds (almost) no data."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\x00" * 16


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=32)
shapes = st.lists(st.integers(0, 40), min_size=0, max_size=4).map(tuple)
dtypes = st.sampled_from(["<f4", "<f8", "<i4", "|u1", "<c8", "|b1"])


@st.composite
def arrays(draw) -> np.ndarray:
    shape = draw(st.one_of(shapes, st.just((draw(st.integers(0, 30)), 17, 3))))
    dtype = np.dtype(draw(dtypes))
    size = int(np.prod(shape)) if shape else 1
    fill = draw(st.lists(finite_or_not, min_size=1, max_size=4))
    values = np.resize(np.array(fill, dtype=np.float64), size).reshape(shape)
    with np.errstate(all="ignore"):
        return values.astype(dtype) if dtype.kind != "c" else values.astype(np.complex64)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | finite_or_not | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- clip collections --------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=2048))
def test_clips_random_bytes(tmp_path, data):
    _outcome("clips", read_clips, _write(tmp_path, "c.npz", data))


@FUZZ
@given(
    clips=st.dictionaries(st.text("abc/_ 1", min_size=1, max_size=6), arrays(), max_size=3),
    meta=json_values,
    cut=st.integers(0, 100),
)
def test_clips_structured(tmp_path, clips, meta, cut):
    raw = _npz_bytes(clips)
    path = _write(tmp_path, "c.npz", raw)
    (tmp_path / "c.json").write_text(json.dumps(meta))
    result = _outcome("clips", read_clips, path)
    if result is not None:  # a valid result is sane
        for arr in result.clips.values():
            assert arr.ndim == 3 and arr.shape[1:] == (17, 3) and np.isfinite(arr).all()
        assert result.fps > 0
    # Truncated copies of the same file.
    _write(tmp_path, "c.npz", raw[: len(raw) * cut // 100])
    (tmp_path / "c.json").unlink()
    _outcome("clips", read_clips, path)


@FUZZ
@given(shape=st.lists(st.integers(0, 2**40), min_size=1, max_size=4).map(tuple))
def test_huge_declared_arrays_are_refused_before_allocation(tmp_path, shape):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("clip.npy", _npy_with_header(shape))
    # Either refused by its declared size, or (small) by its missing data; never allocated.
    assert _outcome("clips", read_clips, path) is None


# -- cameras -----------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=1024))
def test_cameras_random_bytes(tmp_path, data):
    _outcome("cameras", load_h36m_cameras, _write(tmp_path, "cams.json", data))


@FUZZ
@given(doc=json_values)
def test_cameras_random_json(tmp_path, doc):
    _outcome("cameras", load_h36m_cameras, _write(tmp_path, "cams.json", json.dumps(doc).encode()))


def _leaves(doc, path=()):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _leaves(v, (*path, i))
    else:
        yield path


@FUZZ
@given(data=st.data())
def test_cameras_mutated_real_file(tmp_path, cameras_path, data):
    doc = json.loads(cameras_path.read_text())
    leaves = list(_leaves(doc))
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(leaves))
        node = doc
        for key in where[:-1]:
            node = node[key]
        node[where[-1]] = data.draw(json_values)
    result = _outcome(
        "cameras", load_h36m_cameras, _write(tmp_path, "cams.json", json.dumps(doc).encode())
    )
    if result is not None:
        for rig in result.values():
            for cam in rig:
                assert torch.isfinite(cam.intrinsics()).all() and cam.width > 0


# -- checkpoints -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    from conftest import _tiny_config_dict

    cfg = config_from_dict(_tiny_config_dict())
    path = tmp_path_factory.mktemp("ckpt") / "m.safetensors"
    save_checkpoint(path, build_denoiser(cfg.model), cfg, meta={"step": 1})
    return path


@FUZZ
@given(data=st.binary(max_size=2048))
def test_checkpoint_random_bytes(tmp_path, data):
    _outcome("checkpoint", load_model, _write(tmp_path, "m.safetensors", data))


@FUZZ
@given(
    cut=st.integers(0, 10_000),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4),
)
def test_checkpoint_truncated_or_flipped(tmp_path, good_checkpoint, cut, flips):
    good = good_checkpoint.read_bytes()
    raw = bytearray(good[: len(good) * cut // 10_000])
    for pos, value in flips:
        if raw:
            raw[pos % len(raw)] = value
    result = _outcome("checkpoint", load_model, _write(tmp_path, "m.safetensors", bytes(raw)))
    if result is not None:
        model = result[0]
        assert all(torch.isfinite(p).all() for p in model.parameters())


@FUZZ
@given(header_len=st.integers(0, 2**64 - 1), body=st.binary(max_size=64))
def test_checkpoint_declared_header_sizes(tmp_path, header_len, body):
    data = struct.pack("<Q", header_len) + body
    _outcome("checkpoint", read_checkpoint, _write(tmp_path, "m.safetensors", data))


@FUZZ
@given(header=json_values, good=st.booleans())
def test_checkpoint_foreign_headers(tmp_path, good_checkpoint, header, good):
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    meta = {"htpose": json.dumps(header)}
    if good:  # a real header with its config mangled
        real = json.loads(read_checkpoint_bytes_header(good_checkpoint.read_bytes()))
        real["config"] = header
        meta = {"htpose": json.dumps(real)}
    save_file({"w": torch.ones(2)}, str(path), metadata=meta)
    _outcome("checkpoint", load_model, path)


def read_checkpoint_bytes_header(raw: bytes) -> str:
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8 : 8 + n])["__metadata__"]["htpose"]


# -- configs -----------------------------------------------------------------------------


@FUZZ
@given(text=st.text(max_size=300))
def test_config_random_text(tmp_path, text):
    _outcome("config", load_config, _write(tmp_path, "c.yaml", text.encode()))


@FUZZ
@given(
    section=st.sampled_from(["model", "data", "diffusion", "train", "eval", "model.pruning"]),
    key=st.sampled_from(
        [
            "frames",
            "width",
            "depth",
            "heads",
            "steps",
            "lr",
            "batch_size",
            "keep_ratio",
            "tcep_layer",
            "mgptp_layer",
            "merge_ratio",
            "tcep",
            "timesteps",
            "sampling_steps",
            "noise_prob",
            "unknown_key",
        ]
    ),
    value=json_values,
)
def test_config_wrong_values(tmp_path, section, key, value):
    doc = yaml.safe_load((REPO / "configs" / "cmu_small_htp.yaml").read_text())
    node = doc
    for part in section.split("."):
        node = node[part]
    node[key] = value
    text = yaml.safe_dump(doc)
    result = _outcome("config", load_config, _write(tmp_path, "c.yaml", text.encode()))
    if result is not None and result.model.pruning.tcep:
        assert 0 < result.model.pruning.keep_ratio <= 1


# -- Human3.6M and MPI-INF-3DHP ----------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=1024), allow=st.booleans())
def test_h36m_and_3dhp_random_bytes(tmp_path, data, allow):
    path = _write(tmp_path, "d.npz", data)
    _outcome("h36m_3d", read_h36m_3d, path, allow_pickle=False)
    _outcome("h36m_2d", read_keypoints_2d, path, allow_pickle=False)
    _outcome("3dhp", read_3dhp, path, allow_pickle=False)
    _outcome("detect_format", detect_format, path)


@FUZZ
@given(
    positions=st.dictionaries(
        st.sampled_from(["S1", "S9", "S11", "X"]),
        st.one_of(
            st.dictionaries(st.sampled_from(["Walking 1", "Eating"]), arrays(), max_size=2),
            st.dictionaries(
                st.sampled_from(["Walking 1"]), st.lists(arrays(), max_size=5), max_size=1
            ),
            json_values,
        ),
        max_size=3,
    )
)
def test_h36m_trusted_pickles_of_wrong_structure(tmp_path, positions):
    # Built here, so unpickling it is safe; only the structure is hostile.
    for key, reader, name in (
        ("positions_3d", read_h36m_3d, "h36m_3d"),
        ("positions_2d", read_h36m_2d, "h36m_2d"),
    ):
        path = tmp_path / f"{key}.npz"
        np.savez(path, **{key: np.array(positions, dtype=object)})
        result = _outcome(name, reader, path, allow_pickle=True)
        if result is not None and name == "h36m_3d":
            assert all(np.isfinite(c).all() for c in result.clips.values())


@FUZZ
@given(
    keys=st.lists(st.text("ab#0129", min_size=1, max_size=6), max_size=3, unique=True),
    values=st.lists(arrays(), min_size=3, max_size=3),
)
def test_converted_2d_keypoints(tmp_path, keys, values):
    path = tmp_path / "k.npz"
    np.savez(path, **{k: v for k, v in zip(keys, values)})
    result = _outcome("h36m_2d", read_keypoints_2d, path)
    if result is not None:
        for arr in result.values():
            assert arr.shape[1:] == (17, 2) and np.isfinite(arr).all()


@FUZZ
@given(
    entries=st.dictionaries(st.sampled_from(["TS1", "TS2", "S1"]), json_values, max_size=2),
    extra=st.dictionaries(st.sampled_from(["data_2d", "data_3d", "valid"]), arrays(), max_size=3),
)
def test_3dhp_trusted_pickles_of_wrong_structure(tmp_path, entries, extra):
    data = {**entries, "TS1": extra} if extra else entries
    path = tmp_path / "3dhp.npz"
    np.savez(path, data=np.array(data, dtype=object))
    _outcome("3dhp", read_3dhp, path, allow_pickle=True)


# -- users' keypoints and lift results --------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".json", ".csv", ".npy", ".npz"]))
def test_keypoints_random_bytes(tmp_path, data, suffix):
    _outcome("keypoints", read_keypoints, _write(tmp_path, f"k{suffix}", data))


@FUZZ
@given(doc=json_values, wrap=st.sampled_from(["plain", "coco", "openpose", "mediapipe"]))
def test_keypoints_random_json(tmp_path, doc, wrap):
    if wrap == "coco":
        doc = [{"image_id": 0, "keypoints": doc, "score": 1.0}]
    elif wrap == "openpose":
        doc = {"people": [{"pose_keypoints_2d": doc}]}
    elif wrap == "mediapipe":
        doc = [[doc] * 33]
    result = _outcome("keypoints", read_keypoints,
                      _write(tmp_path, "k.json", json.dumps(doc).encode()))  # fmt: skip
    if result is not None:
        assert result.pixels.shape[1:] == (17, 2) and len(result) >= 1
        assert ((result.scores >= 0) & (result.scores <= 1)).all()


@FUZZ
@given(values=arrays(), names=st.sampled_from(["keypoints", "scores", "fps", "other"]))
def test_keypoints_npz_arrays(tmp_path, values, names):
    path = tmp_path / "k.npz"
    base = {"keypoints": np.zeros((3, 17, 2))}
    np.savez(path, **{**base, names: values})
    result = _outcome("keypoints", read_keypoints, path)
    if result is not None:
        assert result.pixels.shape[1:] == (17, 2)


@FUZZ
@given(data=st.binary(max_size=1024))
def test_lift_result_random_bytes(tmp_path, data):
    from htpose.lift import load_result

    _outcome("lift_result", load_result, _write(tmp_path, "r.npz", data))


# -- the command line --------------------------------------------------------------------


def _cli(capsys, args: list[str]) -> None:
    TRIED[f"cli {args[0]}"] += 1
    capsys.readouterr()  # capsys spans all examples of a property: start clean
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code in (0, 2), (code, err)
    if code == 2:
        assert err.startswith("htpose: error:") and "\n" not in err and "Traceback" not in err


@FUZZ
@given(
    data=st.binary(max_size=512),
    which=st.sampled_from(["checkpoint", "data", "config", "lift", "render"]),
)
def test_cli_with_fuzzed_files(tmp_path, capsys, good_checkpoint, data, which):
    ckpt = good_checkpoint
    bad = _write(tmp_path, "bad.bin", data)
    if which == "checkpoint":
        _cli(capsys, ["evaluate", "--checkpoint", str(bad), "--no-progress"])
    elif which == "data":
        _cli(capsys, ["evaluate", "--checkpoint", str(ckpt), "--data", str(bad), "--no-progress"])
    elif which == "lift":
        for suffix in (".json", ".npy", ".csv"):
            src = _write(tmp_path, f"kp{suffix}", data)
            out = tmp_path / "o.npz"
            args = ["lift", str(src), "-o", str(out), "--width", "100", "--height", "100"]
            _cli(capsys, [*args, "--hypotheses", "1", "--steps", "1", "--no-progress"])
    elif which == "render":
        _cli(capsys, ["render", str(bad), "-o", str(tmp_path / "o.gif")])
    else:
        _cli(
            capsys,
            [
                "train",
                "--config",
                str(bad),
                "--out",
                str(tmp_path / "r"),
                "--steps",
                "1",
                "--no-progress",
            ],
        )


_VALUES = ["0", "-1", "x", "1,2", "nan", "inf", "1e30", "0.5", "2", "99", ""]


def _fuzz_cli(capsys, argv: list[str]) -> None:
    try:
        _cli(capsys, argv)
    except SystemExit as exc:  # argparse's usage errors exit 2 with a usage line
        assert exc.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("htpose: error:") and "\n" not in err, err


@FUZZ
@given(
    args=st.lists(
        st.sampled_from(
            [
                "--hypotheses",
                "--steps",
                "--aggregate",
                "--views",
                "--subjects",
                "--split",
                "--fps",
                "--batch",
                "--overlap",
                "--cameras",
                "--max-memory",
                "--noisy",
                "jpma",
                "S9",
                "test",
                "random:2:0",
                "random:0:1",
                "1G",
                *_VALUES,
            ]
        ),
        max_size=6,
    )
)
def test_cli_with_fuzzed_evaluate_options(tmp_path, capsys, good_checkpoint, small_cmu, args):
    """Options paired with real data, so they reach the evaluation itself."""
    base = ["evaluate", "--checkpoint", str(good_checkpoint), "--data", str(small_cmu),
            "--split", "test", "--views", "0", "--subjects", "S9", "--no-progress"]  # fmt: skip
    _fuzz_cli(capsys, [*base, *args])


@FUZZ
@given(
    args=st.lists(
        st.sampled_from(
            [
                "--fps",
                "--focal",
                "--threshold",
                "--hypotheses",
                "--steps",
                "--start-frame",
                "--overlap",
                "--batch",
                "--aggregate",
                "--width",
                "--height",
                "--max-memory",
                "mean",
                "jpma",
                "64M",
                *_VALUES,
            ]
        ),
        max_size=6,
    )
)
def test_cli_with_fuzzed_lift_options(tmp_path, capsys, good_checkpoint, args):
    """Options paired with a valid keypoint file, so they reach the lifting itself."""
    kp = tmp_path / "kp.npz"
    rng = np.random.default_rng(0)
    np.savez(kp, keypoints=500 + rng.normal(0, 50, (30, 17, 2)), fps=np.float64(30),
             width=1000, height=1000)  # fmt: skip
    out = tmp_path / "o.npz"
    base = ["lift", str(kp), "-o", str(out), "--checkpoint", str(good_checkpoint),
            "--no-progress", "--hypotheses", "1", "--steps", "1"]  # fmt: skip
    _fuzz_cli(capsys, [*base, *args])
    if out.exists():
        from htpose.lift import load_result

        assert np.isfinite(load_result(out).joints_3d).all()


# -- structure-aware: valid-looking files, mutated (see structured_fuzz.py) ----------------


@pytest.fixture(scope="module")
def tiny_lifter():
    from htpose.config import Config
    from htpose.lift import Lifter
    from htpose.model.denoiser import ModelConfig

    cfg = Config()
    cfg.model = ModelConfig(frames=9, width=16, depth=1, heads=2)
    torch.manual_seed(0)
    return Lifter(build_denoiser(cfg.model), cfg)


@pytest.mark.parametrize("reader", __import__("structured_fuzz").READERS)
def test_structured_fuzz_reaches_the_readers_and_the_lifter(tmp_path, reader, tiny_lifter,
                                                            cameras_path):  # fmt: skip
    import random

    import structured_fuzz as sf

    real = json.loads(cameras_path.read_text()) if reader == "cameras" else None
    outcomes: Counter[str] = Counter()
    rng = random.Random(f"{reader}-{EXAMPLES}")
    for i in range(max(EXAMPLES, 25)):
        case_dir = tmp_path / str(i)
        case_dir.mkdir()
        path = sf.write_case(reader, rng, case_dir, real)
        result = _outcome(reader + "_structured", sf.read_case, reader, path)
        if result is None:
            outcomes["error"] += 1
            continue
        outcomes["read"] += 1
        if hasattr(result, "pixels"):
            lifted = _outcome("lift_structured", tiny_lifter, result, image_size=(1280, 720),
                              fps=result.fps or 30, hypotheses=1, steps=1)  # fmt: skip
            if lifted is not None:
                outcomes["lifted"] += 1
                assert np.isfinite(lifted.joints_3d).all()
                assert lifted.joints_3d.shape == (len(result), 17, 3)
    # The generator keeps a good share of inputs readable, so the code past parsing runs.
    assert outcomes["read"] >= 0.1 * (outcomes["read"] + outcomes["error"]), outcomes
    if reader not in ("cameras", "config", "clips"):
        assert outcomes["lifted"] >= 1, outcomes
