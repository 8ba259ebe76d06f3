"""Users' keypoint formats, their mapping to Human3.6M-17, missing joints, and lifting."""

import csv
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from htpose.cli import main
from htpose.data.keypoints import fill_missing, read_keypoints
from htpose.errors import DataError, HtposeError
from htpose.lift import Lifter, load_result, resample_to
from htpose.skeleton import JOINT_NAMES, PARENTS, STATURE_PER_CHAIN, stature

J = {name: i for i, name in enumerate(JOINT_NAMES)}


def _pose(frames: int = 6) -> np.ndarray:
    """An asymmetric H36M-17 pixel track whose synthesised joints are consistent with the
    COCO convention (pelvis = mid-hips, thorax = mid-shoulders, spine between them)."""
    t = np.arange(frames)[:, None]
    p = np.zeros((frames, 17, 2))
    p[:, J["l_hip"]] = [540, 600]
    p[:, J["r_hip"]] = [460, 604]
    p[:, J["l_knee"]] = [550, 720]
    p[:, J["r_knee"]] = [445, 700]
    p[:, J["l_ankle"]] = [560, 840]
    p[:, J["r_ankle"]] = [420, 790]  # right leg lifted: not a mirror image
    p[:, J["l_shoulder"]] = [580, 380]
    p[:, J["r_shoulder"]] = [430, 390]
    p[:, J["l_elbow"]] = [640, 470]
    p[:, J["r_elbow"]] = [380, 300]  # right arm raised
    p[:, J["l_wrist"]] = [650, 560]
    p[:, J["r_wrist"]] = [390, 200]
    p[:, J["neck_nose"]] = [505, 320]
    p[:, J["head"]] = [503, 290]
    p += (t * np.array([3.0, 0.5]))[:, None]  # walking to the right
    p[:, J["pelvis"]] = (p[:, J["l_hip"]] + p[:, J["r_hip"]]) / 2
    p[:, J["thorax"]] = (p[:, J["l_shoulder"]] + p[:, J["r_shoulder"]]) / 2
    p[:, J["spine"]] = (p[:, J["pelvis"]] + p[:, J["thorax"]]) / 2
    return p


def _coco17(p: np.ndarray) -> np.ndarray:
    """(T, 17, 2) H36M -> (T, 17, 2) COCO-17."""
    c = np.zeros_like(p)
    c[:, 0] = p[:, J["neck_nose"]]
    c[:, 1] = p[:, J["head"]] + [8, 0]  # left eye
    c[:, 2] = p[:, J["head"]] - [8, 0]
    c[:, 3] = p[:, J["head"]] + [15, 5]
    c[:, 4] = p[:, J["head"]] - [15, -5]
    for k, name in zip(range(5, 17), ["l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
                                      "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee",
                                      "r_knee", "l_ankle", "r_ankle"]):  # fmt: skip
        c[:, k] = p[:, J[name]]
    return c


def _body25(p: np.ndarray) -> np.ndarray:
    b = np.zeros((len(p), 25, 2))
    order = {0: "neck_nose", 1: "thorax", 2: "r_shoulder", 3: "r_elbow", 4: "r_wrist",
             5: "l_shoulder", 6: "l_elbow", 7: "l_wrist", 8: "pelvis", 9: "r_hip",
             10: "r_knee", 11: "r_ankle", 12: "l_hip", 13: "l_knee", 14: "l_ankle"}  # fmt: skip
    for k, name in order.items():
        b[:, k] = p[:, J[name]]
    b[:, 15] = p[:, J["head"]] - [8, 0]  # right eye
    b[:, 16] = p[:, J["head"]] + [8, 0]
    b[:, 17:] = p[:, J["head"]][:, None] + 3.0
    return b


def _coco18(p: np.ndarray) -> np.ndarray:
    b = _body25(p)
    out = np.zeros((len(p), 18, 2))
    out[:, :8] = b[:, :8]
    out[:, 8:14] = b[:, 9:15]
    out[:, 14:18] = b[:, 15:19]
    return out


def _mediapipe(p: np.ndarray, w: float, h: float) -> np.ndarray:
    m = np.zeros((len(p), 33, 2)) + p[:, J["head"]][:, None]
    m[:, 0] = p[:, J["neck_nose"]]
    m[:, 2] = p[:, J["head"]] + [8, 0]  # the person's left eye
    m[:, 5] = p[:, J["head"]] - [8, 0]
    for k, name in {11: "l_shoulder", 12: "r_shoulder", 13: "l_elbow", 14: "r_elbow",
                    15: "l_wrist", 16: "r_wrist", 23: "l_hip", 24: "r_hip", 25: "l_knee",
                    26: "r_knee", 27: "l_ankle", 28: "r_ankle"}.items():  # fmt: skip
        m[:, k] = p[:, J[name]]
    return m / [w, h]


def _check_mapping(kp, pose: np.ndarray) -> None:
    assert kp.pixels.shape == pose.shape
    np.testing.assert_allclose(kp.pixels, pose, atol=1e-6)
    # Left stays left: the raised right wrist is the highest wrist in the image.
    assert kp.pixels[0, J["r_wrist"], 1] < kp.pixels[0, J["l_wrist"], 1]


def test_coco_results_json(tmp_path):
    pose = _pose()
    coco = _coco17(pose)
    entries = []
    for i, frame in enumerate(coco):
        kps = np.c_[frame, np.full(17, 0.9)].reshape(-1).tolist()
        entries.append({"image_id": i, "category_id": 1, "keypoints": kps, "score": 0.95})
        # A second, less confident person far away in every frame: not the track.
        far = np.c_[frame + 900, np.full(17, 0.5)].reshape(-1).tolist()
        entries.append({"image_id": i, "category_id": 1, "keypoints": far, "score": 0.6})
    path = tmp_path / "results.json"
    path.write_text(json.dumps(entries))
    kp = read_keypoints(path)
    assert kp.source == "coco17"
    _check_mapping(kp, pose)
    np.testing.assert_allclose(kp.scores, 0.9)


def test_coco_dataset_json_gives_the_image_size_and_gaps_become_missing(tmp_path):
    pose = _pose(5)
    coco = _coco17(pose)
    anns = [
        {"image_id": i, "keypoints": np.c_[coco[i], np.full(17, 2)].reshape(-1).tolist()}
        for i in (0, 1, 3, 4)  # frame 2: nobody
    ]
    doc = {"images": [{"id": i, "width": 1280, "height": 720} for i in range(5)],
           "annotations": anns}  # fmt: skip
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(doc))
    kp = read_keypoints(path)
    assert (kp.width, kp.height) == (1280, 720) and len(kp) == 5
    assert np.isnan(kp.pixels[2]).all() and (kp.scores[2] == 0).all()
    filled, mask = fill_missing(kp.pixels, kp.scores)
    assert mask[2].all() and not mask[[0, 1, 3, 4]].any()
    np.testing.assert_allclose(filled[2], pose[2], atol=1e-6)  # linear motion: exact


@pytest.mark.parametrize("wrapped", [False, True])
def test_mmpose_predictions_json(tmp_path, wrapped):
    pose = _pose()
    coco = _coco17(pose)
    doc = [{"frame_id": i, "instances": [{"keypoints": coco[i].tolist(),
                                          "keypoint_scores": [0.8] * 17}]}
           for i in range(len(pose))]  # fmt: skip
    if wrapped:  # as MMPose's top-down demo writes it with --save-predictions
        doc = {"meta_info": {"dataset_name": "coco", "num_keypoints": 17}, "instance_info": doc}
    path = tmp_path / "mmpose.json"
    path.write_text(json.dumps(doc))
    _check_mapping(read_keypoints(path), pose)


@pytest.mark.parametrize("layout", ["body25", "coco18"])
def test_openpose_folder_follows_one_person(tmp_path, layout):
    pose = _pose()
    points = _body25(pose) if layout == "body25" else _coco18(pose)
    folder = tmp_path / "openpose"
    folder.mkdir()
    for i, frame in enumerate(points):
        person = np.c_[frame, np.full(len(frame), 0.8)].reshape(-1).tolist()
        # Another person, more confident from frame 1 on, stands elsewhere.
        other = np.c_[frame + [700, 0], np.full(len(frame), 0.99 if i else 0.1)]
        people = [{"pose_keypoints_2d": other.reshape(-1).tolist()}, {"pose_keypoints_2d": person}]
        (folder / f"video_{i:012d}_keypoints.json").write_text(json.dumps({"people": people}))
    kp = read_keypoints(folder)
    assert kp.source == layout
    _check_mapping(kp, pose)


def test_mediapipe_json_and_csv(tmp_path):
    pose = _pose()
    w, h = 1000.0, 1000.0
    mp = _mediapipe(pose, w, h)
    frames = [[{"x": x, "y": y, "z": 0.0, "visibility": 0.9} for x, y in f] for f in mp]
    path = tmp_path / "landmarks.json"
    path.write_text(json.dumps(frames))
    kp = read_keypoints(path)
    assert kp.source == "mediapipe33"
    np.testing.assert_allclose(kp.pixels * [w, h], pose, atol=1e-6)

    rows = [["frame"] + [f"{a}{k}" for k in range(33) for a in ("x", "y", "z", "v")]]
    for i, f in enumerate(mp):
        rows.append([i] + [v for x, y in f for v in (x, y, 0.0, 0.9)])
    path = tmp_path / "landmarks.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    kp2 = read_keypoints(path)
    np.testing.assert_allclose(kp2.pixels, kp.pixels, atol=1e-9)


def _yolo_line(frame: np.ndarray, w: float, h: float, conf: float, channels: int) -> str:
    """One Ultralytics pose label line: class, box, 17 keypoints, box confidence."""
    pts = frame / [w, h]
    lo, hi = pts.min(0), pts.max(0)
    box = [*(lo + hi) / 2, *(hi - lo)]
    kps = np.c_[pts, np.full(17, 0.9)][:, :channels].reshape(-1)
    return " ".join(f"{v:.6f}" for v in [0, *box, *kps, conf])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_yolo_label_folder_numbers_frames_by_name_and_follows_one_person(tmp_path, seed):
    rng = np.random.default_rng(seed)
    frames = int(rng.integers(8, 30))
    pose = _pose(frames)
    w, h = 1920.0, 1080.0
    coco = _coco17(pose)
    first = int(rng.integers(1, 5))  # Ultralytics numbers a video's frames from 1
    missing = set(rng.choice(np.arange(1, frames - 1), size=3, replace=False).tolist())
    folder = tmp_path / "labels"
    folder.mkdir()
    for i in range(frames):
        if i in missing:
            continue  # nobody detected: Ultralytics writes no file
        far = coco[i] + [700, 0]
        lines = [_yolo_line(far, w, h, 0.5, 3), _yolo_line(coco[i], w, h, 0.9, 3)]
        if i == 0:
            lines = lines[::-1]
        (folder / f"clip_{first + i}.txt").write_text("\n".join(lines) + "\n")
    kp = read_keypoints(folder)
    assert kp.normalized and kp.source == "coco17" and len(kp) == frames
    present = [i for i in range(frames) if i not in missing]
    np.testing.assert_allclose(kp.pixels[present] * [w, h], pose[present], atol=1e-2)
    assert np.isnan(kp.pixels[sorted(missing)]).all() and (kp.scores[sorted(missing)] == 0).all()
    # Two-value keypoints, one file; a keypoint at (0, 0) is YOLO's "not found".
    lines = [_yolo_line(c, w, h, 0.8, 2) for c in coco[:1]]
    fields = lines[0].split()
    fields[5 + 2 * 9 : 5 + 2 * 9 + 2] = ["0", "0"]  # COCO 9: left wrist
    one = tmp_path / "frame.txt"
    one.write_text(" ".join(fields))
    kp = read_keypoints(one)
    assert kp.scores[0, J["l_wrist"]] == 0 and np.isnan(kp.pixels[0, J["l_wrist"]]).all()
    wrist = kp.pixels[0, J["r_wrist"]] * [w, h]
    np.testing.assert_allclose(wrist, pose[0, J["r_wrist"]], atol=1e-2)


def test_yolo_labels_lift_with_the_image_size_and_refuse_bad_lines(tmp_path, capsys):
    pose = _pose(12)
    folder = tmp_path / "labels"
    folder.mkdir()
    for i, frame in enumerate(_coco17(pose)):
        (folder / f"v_{i + 1}.txt").write_text(_yolo_line(frame, 1280, 720, 0.9, 3))
    out = tmp_path / "motion.npz"
    opts = ["--hypotheses", "1", "--no-progress"]
    assert main(["lift", str(folder), "-o", str(out), *opts]) == 2
    err = capsys.readouterr().err.strip()  # one line: the frame-rate note waits for success
    assert err.startswith("htpose: error:") and "--width" in err and "\n" not in err
    assert not out.exists()
    size = ["--width", "1280", "--height", "720"]
    assert main(["lift", str(folder), "-o", str(out), *size, *opts]) == 0
    assert "30 fps was assumed" in capsys.readouterr().err
    result = load_result(out)
    np.testing.assert_allclose(result.keypoints_2d, pose, atol=0.05)
    for bad, message in (("0 0.5 0.5 0.1 0.2", "56 or 39"), ("x" * 56, "56 or 39"),
                         (" ".join(["nan"] * 55 + ["y"]), "line 1")):  # fmt: skip
        (folder / "v_3.txt").write_text(bad)
        with pytest.raises(DataError, match=message):
            read_keypoints(folder)


def test_numpy_inputs(tmp_path):
    pose = _pose()
    np.save(tmp_path / "k.npy", pose)
    _check_mapping(read_keypoints(tmp_path / "k.npy"), pose)
    np.savez(tmp_path / "k.npz", keypoints=pose, scores=np.full(pose.shape[:2], 0.7), fps=25.0,
             width=1000, height=1002)  # fmt: skip
    kp = read_keypoints(tmp_path / "k.npz")
    assert kp.fps == 25.0 and (kp.width, kp.height) == (1000, 1002)
    np.testing.assert_allclose(kp.scores, 0.7)


def test_missing_joints_are_interpolated_and_flagged():
    pose = _pose(7)
    scores = np.ones(pose.shape[:2])
    scores[2:5, J["l_wrist"]] = 0.1  # low confidence in the middle
    scores[0, J["r_knee"]] = 0.0  # missing at the start: held from frame 1
    pixels = pose.copy()
    pixels[2:5, J["l_wrist"]] = [0, 0]
    filled, mask = fill_missing(pixels, scores)
    np.testing.assert_allclose(filled[2:5, J["l_wrist"]], pose[2:5, J["l_wrist"]], atol=1e-9)
    np.testing.assert_allclose(filled[0, J["r_knee"]], pose[1, J["r_knee"]])
    assert mask.sum() == 4 and mask[2:5, J["l_wrist"]].all() and mask[0, J["r_knee"]]
    with pytest.raises(DataError, match="missing in every frame"):
        s = scores.copy()
        s[:, J["head"]] = 0
        fill_missing(pixels, s)
    with pytest.raises(DataError, match="all missing"):
        fill_missing(pixels, np.zeros_like(scores))
    # Never confident but placed by the detector (MediaPipe's occluded landmarks): its own
    # guesses are kept, flagged as filled; only frames with no guess at all are interpolated.
    s = scores.copy()
    s[:, J["head"]] = 0.1
    s[3, J["head"]] = 0.0
    filled, mask = fill_missing(pixels, s)
    keep = np.arange(len(pose)) != 3
    np.testing.assert_allclose(filled[keep, J["head"]], pixels[keep, J["head"]])
    np.testing.assert_allclose(
        filled[3, J["head"]], (pixels[2, J["head"]] + pixels[4, J["head"]]) / 2
    )
    assert mask[:, J["head"]].all()


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "not valid JSON"),
        ('{"foo": 1}', "unknown schema"),
        ("[]", "unknown schema"),
        ('[{"image_id": 0, "keypoints": [1, 2, 3]}]', "expected 17 x 3"),
        ('{"people": [{"pose_keypoints_2d": [1, 2, 3]}]}', "expected 75"),
        ('[{"image_id": 0, "keypoints": [1, 2', "not valid JSON"),
    ],
)
def test_foreign_or_broken_json_is_refused(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError, match=match):
        read_keypoints(path)


def test_resample_to_keeps_the_time_axis():
    seq = np.arange(10, dtype=float)[:, None]  # 10 frames at 25 fps: 0 .. 0.36 s
    up = resample_to(seq, 25, 50, 19)
    np.testing.assert_allclose(up[:, 0], np.arange(19) / 2)
    np.testing.assert_allclose(resample_to(up, 50, 25, 10), seq)


@pytest.fixture(scope="module")
def lifter():
    return Lifter.from_pretrained()


def test_lifting_is_the_same_whole_or_in_batches(lifter):
    frames = lifter.config.model.frames
    pose = _pose(2 * frames) + np.random.default_rng(0).normal(0, 2, (2 * frames, 17, 2))
    kwargs = dict(image_size=(1000, 1002), fps=50, hypotheses=2, steps=2)
    whole = lifter(pose, batch=2, **kwargs)
    one_by_one = lifter(pose, batch=1, **kwargs)
    assert whole.joints_3d.shape == (2 * frames, 17, 3)
    assert whole.hypotheses.shape == (2 * frames, 2, 17, 3)
    np.testing.assert_allclose(whole.joints_3d, one_by_one.joints_3d, atol=1e-5)
    assert np.all(whole.uncertainty >= 0) and whole.uncertainty.mean() > 0
    np.testing.assert_allclose(whole.joints_3d[:, 0], 0, atol=1e-6)  # root-relative


@settings(max_examples=6, deadline=None)
@given(
    cut_share=st.floats(0.1, 0.9),
    fps=st.sampled_from([12.5, 24.0, 29.97, 30.0, 50.0, 59.94, 100.0]),
    overlap=st.sampled_from([0.0, 0.5]),
)
def test_pieces_lifted_with_their_start_frame_match_the_whole(lifter, cut_share, fps, overlap):
    """At any cut point and frame rate, frames more than one window from the cut are the
    whole-clip lift's, to float rounding; near the cut a piece lacks the other side."""
    frames = lifter.config.model.frames
    n = int(3 * frames * fps / 50)
    pose = _pose(n) + np.random.default_rng(1).normal(0, 2, (n, 17, 2))
    cut = int(cut_share * n)
    kw = dict(image_size=(1000, 1002), fps=fps, hypotheses=2, steps=1, overlap=overlap)
    whole = lifter(pose, **kw).joints_3d
    first = lifter(pose[:cut], **kw).joints_3d
    second = lifter(pose[cut:], start_frame=cut, **kw).joints_3d
    pieces = np.concatenate([first, second])
    margin = int(np.ceil((frames + 2) * fps / 50))
    far = np.r_[0 : max(cut - margin, 0), min(cut + margin, n) : n]
    np.testing.assert_allclose(pieces[far], whole[far], atol=1e-5)


def test_a_detector_outlier_frame_is_filtered_out_before_lifting(lifter):
    """A wrist thrown 300 px for one frame (a detector glitch) moves the 3D there without
    the 2D median (the default), and leaves it as the clean lift with it."""
    pose = _pose(60)
    glitch = pose.copy()
    glitch[30, J["r_wrist"]] += [300.0, -200.0]
    kw = dict(image_size=(1000, 1002), fps=50, hypotheses=2, steps=1)
    clean = lifter(pose, **kw)
    filtered = lifter(glitch, median_2d=5, **kw)
    raw = lifter(glitch, **kw)
    assert filtered.info["median_2d"] == 5 and raw.info["median_2d"] == 0

    def jump(result) -> float:  # the 3D wrist at frame 30 against its neighbours' mean
        w = result.joints_3d[:, J["r_wrist"]]
        return float(np.linalg.norm(w[30] - (w[29] + w[31]) / 2))

    assert jump(raw) > 0.05 and jump(filtered) < 0.2 * jump(raw)
    assert jump(filtered) < jump(clean) + 0.005
    for bad in (2, 4, 33, -1):
        with pytest.raises(HtposeError, match="median_2d"):
            lifter(pose, median_2d=bad, **kw)


def test_a_known_height_scales_the_body_and_keeps_its_projection(lifter):
    pose = _pose(40)
    kw = dict(image_size=(1000, 1002), fps=30, hypotheses=3, steps=1)
    plain = lifter(pose, **kw)
    tall = lifter(pose, body_height=1.93, **kw)
    s = tall.info["body_scale"]
    assert tall.info["body_height_m"] == 1.93 and plain.info["body_scale"] == 1.0
    assert stature(tall.joints_3d) == pytest.approx(1.93, rel=1e-5)
    assert s == pytest.approx(1.93 / stature(plain.joints_3d), rel=1e-3)
    for name in ("joints_3d", "hypotheses", "uncertainty", "root"):
        np.testing.assert_allclose(getattr(tall, name), s * getattr(plain, name), rtol=1e-3)

    def projected(r):  # the same picture: a bigger body just as much further away
        p = r.joints_3d + r.root[:, None]
        return p[..., :2] / p[..., 2:]

    np.testing.assert_allclose(projected(tall), projected(plain), atol=1e-5)
    for bad in (0.3, 3.0, float("nan"), -1.7):
        with pytest.raises(HtposeError, match="body height must be in"):
            lifter(pose, body_height=bad, **kw)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.floats(0.5, 2.0))
def test_stature_is_the_bone_chain_whatever_the_posture(seed, size):
    rng = np.random.default_rng(seed)
    bones = size * rng.uniform(0.05, 0.5, 17)  # a bone length per joint, to its parent
    frames = np.zeros((5, 17, 3))
    for j, parent in enumerate(PARENTS):
        if parent >= 0:  # each frame bends every bone its own way
            direction = rng.normal(size=(5, 3))
            direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
            frames[:, j] = frames[:, parent] + bones[j] * direction
    leg = (bones[[3, 2, 6, 5]]).sum() / 2
    trunk = bones[[7, 8, 9, 10]].sum()
    assert stature(frames) == pytest.approx((leg + trunk) * STATURE_PER_CHAIN, rel=1e-9)


def test_lift_cli_refuses_a_bad_median_window(tmp_path, capsys):
    track = tmp_path / "track.npy"
    np.save(track, _pose(20))
    args = ["lift", str(track), "-o", str(tmp_path / "out.npz"), "--width", "1000", "--height",
            "1002", "--hypotheses", "1"]  # fmt: skip
    assert main([*args, "--median-2d", "4"]) == 2
    assert "htpose: error: median_2d must be 0 (off) or an odd" in capsys.readouterr().err
    assert main([*args, "--median-2d", "99"]) == 2
    assert "up to 31, got 99" in capsys.readouterr().err
    assert main(["evaluate", "--median-2d", "6", "--split", "val"]) == 2  # before any data
    assert "median_2d must be 0 (off)" in capsys.readouterr().err
    assert not (tmp_path / "out.npz").exists()
    with pytest.raises(SystemExit) as exc:
        main([*args, "--body-height", "17"])  # centimetres or feet by mistake
    assert exc.value.code == 2 and not (tmp_path / "out.npz").exists()


def test_frame_rates_single_frames_and_nan(lifter):
    pose = _pose(60)
    r = lifter(pose[::8], image_size=(1000, 1002), fps=240 / 8, hypotheses=1, steps=1)
    assert r.joints_3d.shape == (8, 17, 3) and r.fps == 30
    fast = lifter(np.repeat(pose, 4, axis=0), image_size=(1000, 1002), fps=240, hypotheses=1,
                  steps=1)  # fmt: skip
    assert fast.joints_3d.shape == (240, 17, 3) and np.isfinite(fast.joints_3d).all()
    one = lifter(pose[:1], image_size=(1000, 1002), fps=30, hypotheses=2, steps=1)
    assert one.joints_3d.shape == (1, 17, 3)
    holes = pose.copy()
    holes[10:20, J["l_knee"]] = np.nan
    r = lifter(holes, image_size=(1000, 1002), fps=50, hypotheses=1, steps=1)
    assert np.isfinite(r.joints_3d).all() and r.filled[10:20, J["l_knee"]].all()
    with pytest.raises(DataError, match="expected \\(frames, 17, 2\\)"):
        lifter(np.zeros((5, 18, 2)), image_size=(100, 100))
    with pytest.raises(DataError, match="image size"):
        lifter(pose)


def test_cli_lift_writes_every_output_atomically(tmp_path, capsys):
    pose = _pose(40)
    coco = _coco17(pose)
    entries = [{"image_id": i, "keypoints": np.c_[coco[i], np.full(17, 0.9)].reshape(-1).tolist(),
                "score": 0.9} for i in range(len(pose))]  # fmt: skip
    src = tmp_path / "results.json"
    src.write_text(json.dumps(entries))
    out = tmp_path / "out.npz"
    args = ["lift", str(src), "-o", str(out), "--width", "1000", "--height", "1002",
            "--fps", "25", "--hypotheses", "3", "--steps", "2", "--json", "--csv",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert "lifted 40 frames" in capsys.readouterr().out
    res = load_result(out)
    assert res.joints_3d.shape == (40, 17, 3) and res.hypotheses.shape == (40, 3, 17, 3)
    doc = json.loads(out.with_suffix(".json").read_text())
    assert len(doc["frames"]) == 40 and doc["joint_names"][13] == "l_wrist"
    lines = out.with_suffix(".csv").read_text().splitlines()
    assert len(lines) == 41 and lines[0].startswith("frame,time_s,pelvis_x")
    assert not list(tmp_path.glob(".*.tmp"))

    # Bad input: one line, exit 2, and the earlier result is untouched.
    before = out.read_bytes()
    for bad, match in ((b"", "not valid JSON"), (b'{"x": 1}', "unknown schema"),
                       (b"[]", "unknown schema")):  # fmt: skip
        src.write_bytes(bad)
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("htpose: error:") and match in err and "\n" not in err
    zero = [{**e, "keypoints": np.c_[coco[0], np.zeros(17)].reshape(-1).tolist()} for e in entries]
    src.write_text(json.dumps(zero))
    assert main(args) == 2 and "all missing" in capsys.readouterr().err
    assert out.read_bytes() == before
    np.save(tmp_path / "x.npy", np.zeros((4, 17, 2)))
    assert main(["lift", str(tmp_path / "x.npy"), "-o", str(out), "--no-progress"]) == 2
    assert "--width and --height" in capsys.readouterr().err


def test_demo_runs_end_to_end_on_the_bundled_sample(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--hypotheses", "2", "--steps", "2", "--max-frames", "4",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "240 frames" in text and "MPJPE" in text
    mpjpe = float(text.split("motion capture ")[1].split(" mm")[0])
    assert 20 < mpjpe < 250  # a lift, not noise (a random pose is ~400 mm off)
    assert load_result(out / "boxing_3d.npz").joints_3d.shape == (240, 17, 3)
    assert (out / "boxing_3d.gif").stat().st_size > 1000
    assert (out / "boxing_uncertainty.png").stat().st_size > 1000


def _halpe26(p: np.ndarray) -> np.ndarray:
    """COCO-17 first, then head, neck, mid-hip and six foot points (Halpe-26)."""
    c = _coco17(p)
    extra = np.stack(
        [p[:, J["head"]], p[:, J["thorax"]], p[:, J["pelvis"]]]
        + [p[:, J["l_ankle"]] + [d, 10] for d in (-5, 5)]
        + [p[:, J["r_ankle"]] + [d, 10] for d in (-5, 5)]
        + [p[:, J["l_ankle"]], p[:, J["r_ankle"]]],
        axis=1,
    )
    return np.concatenate([c, extra], axis=1)


@pytest.mark.parametrize("layout", ["halpe26", "wholebody133", "body25b"])
def test_layouts_that_begin_with_coco17_map_like_coco17(tmp_path, layout):
    pose = _pose(12)
    points = _halpe26(pose)
    if layout == "wholebody133":
        points = np.concatenate([points[:, :17], np.repeat(points[:, 16:17], 116, axis=1)], 1)
    elif layout == "body25b":
        points = points[:, :25]
    entries = [{"image_id": f"{i}.jpg", "keypoints": np.c_[points[i], np.full(len(points[i]),
                0.9)].reshape(-1).tolist()} for i in range(len(pose))]  # fmt: skip
    src = tmp_path / "k.json"
    src.write_text(json.dumps(entries))
    forced = layout if layout == "body25b" else None  # 25 points: BODY_25B named explicitly
    kp = read_keypoints(src, layout=forced)
    assert kp.source == layout
    np.testing.assert_allclose(kp.pixels, pose, atol=1e-9)


def test_body25_and_body25b_are_told_apart_from_the_data(tmp_path):
    rng = np.random.default_rng(0)
    pose = _pose(40) + rng.normal(0, 1.0, (40, 17, 2))
    b25 = _body25(pose)
    b25b = np.concatenate([_coco17(pose), np.repeat(_coco17(pose)[:, 15:17], 4, axis=1)], 1)
    for points, expected in ((b25, "body25"), (b25b, "body25b")):
        folder = tmp_path / expected
        folder.mkdir()
        for i in range(len(points)):
            person = np.c_[points[i], np.full(25, 0.9)].reshape(-1).tolist()
            (folder / f"f_{i:04d}_keypoints.json").write_text(
                json.dumps({"people": [{"pose_keypoints_2d": person}]})
            )
        kp = read_keypoints(folder)
        assert kp.source == expected
        # Joints both layouts carry directly (the others are midpoints of noisy points).
        direct = [j for j in range(17) if JOINT_NAMES[j] not in ("pelvis", "spine", "thorax")]
        np.testing.assert_allclose(kp.pixels[:, direct], pose[:, direct], atol=1e-6)
        with pytest.raises(DataError, match="layout coco17 has 17"):
            read_keypoints(folder, layout="coco17")


def test_an_undecidable_25_point_file_asks_for_layout(tmp_path):
    person = np.c_[np.full((25, 2), 300.0), np.full(25, 0.9)].reshape(-1).tolist()
    path = tmp_path / "one_keypoints.json"
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": person}]}))
    with pytest.raises(DataError, match="pass --layout"):
        read_keypoints(path)
    assert read_keypoints(path, layout="body25b").source == "body25b"


def test_implausible_2d_is_flagged(tmp_path, capsys, cmu_path, cameras_path):
    """Real motion through a real camera is plausible; the same motion read through the
    wrong layout (BODY_25 taken for BODY_25B, the silent failure users met) scores clearly
    worse (what tells the two apart), and keypoints in a scrambled order are flagged."""
    from htpose.data.camera import load_h36m_cameras
    from htpose.data.clips import read_clips
    from htpose.data.keypoints import IMPLAUSIBLE, implausibility, to_h36m
    from htpose.data.sources import collection_sequences

    coll = read_clips(cmu_path).select("val")
    coll.clips = dict(list(coll.clips.items())[:3])
    seqs = collection_sequences(coll, load_h36m_cameras(cameras_path), ["S9"], [0])
    for seq in seqs:
        px = seq.keypoints_2d[:200].astype(np.float64)
        ones = np.ones(px.shape[:2])
        right = implausibility(px, ones)
        assert right < IMPLAUSIBLE
        one = int(np.random.default_rng(len(px)).integers(len(px)))
        assert implausibility(px[one : one + 1], ones[:1]) < IMPLAUSIBLE  # one frame: finite
        misread, sc = to_h36m(np.concatenate([_body25(px), np.ones((len(px), 25, 1))], -1),
                              "body25b")  # fmt: skip
        assert implausibility(misread, sc) > 1.4 * right
        scrambled = px[:, np.random.default_rng(0).permutation(17)]
        assert implausibility(scrambled, ones) > IMPLAUSIBLE
    path = tmp_path / "scrambled.npy"
    np.save(path, scrambled)
    args = ["lift", str(path), "-o", str(tmp_path / "o.npz"), "--width", "1000", "--height",
            "1002", "--hypotheses", "1", "--steps", "1", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert "htpose: warning: this 2D is implausible" in capsys.readouterr().err
