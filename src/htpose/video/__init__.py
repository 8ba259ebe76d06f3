"""From a video file to one person's 2D keypoints: decoding, detection, person tracking.

``decode`` reads frames through imageio-ffmpeg; ``detect`` holds the detector interface and
MediaPipe Pose; ``track`` picks one person and follows them; ``pipeline`` runs the three
with per-stage timings and hands :class:`~htpose.data.keypoints.Keypoints2D` to the lifter.
"""
