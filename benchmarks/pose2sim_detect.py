"""Run MediaPipe Pose (offline, the model inside the 0.10.x wheel) on the Pose2Sim videos.

Writes one array per camera, ``(frames, 33, 3)``: pixel x, pixel y, visibility (NaN where no
person was found). Needs only mediapipe and OpenCV (run it in an environment with
``pip install mediapipe==0.10.14``); htpose reads the result.

    python benchmarks/pose2sim_detect.py ../shared/data/pose2sim runs/pose2sim_mediapipe.npz
    python benchmarks/pose2sim_detect.py ../shared/data/pose2sim runs/pose2sim_static.npz --static

By default MediaPipe runs as a tracker (``static_image_mode=False``), which smooths its
landmarks over time; ``--static`` detects every frame afresh, as ``htpose video`` does (on
a crop around the followed person there) and as frame-by-frame detectors do.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np


def detect(video: Path, static: bool = False) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    out = []
    with mp.solutions.pose.Pose(static_image_mode=static, model_complexity=1) as pose:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            res = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            pts = np.full((33, 3), np.nan)
            if res.pose_landmarks:
                for i, lm in enumerate(res.pose_landmarks.landmark):
                    pts[i] = (lm.x * w, lm.y * h, lm.visibility)
            out.append(pts)
    return np.array(out), (w, h)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="the Pose2Sim folder with cam*.mp4")
    ap.add_argument("target", type=Path, help="the .npz to write")
    ap.add_argument("--static", action="store_true", help="detect every frame afresh")
    args = ap.parse_args()
    folder, target = args.folder, args.target
    arrays = {}
    for video in sorted(folder.glob("cam*.mp4")):
        pts, (w, h) = detect(video, args.static)
        arrays[video.stem] = pts
        arrays[f"{video.stem}_size"] = np.array([w, h])
        print(video.stem, pts.shape, f"{w}x{h}", f"found in {np.isfinite(pts[:, 0, 0]).mean():.0%}")
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez(target, **arrays)


if __name__ == "__main__":
    main()
