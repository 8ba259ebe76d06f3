"""htpose: lift 2D human keypoint sequences to 3D with a diffusion model made cheap by
Hierarchical Temporal Pruning.

``Lifter`` and ``read_keypoints`` are imported lazily so that ``import htpose`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Lifter", "LiftResult", "read_keypoints", "__version__"]

if TYPE_CHECKING:
    from htpose.data.keypoints import read_keypoints
    from htpose.lift import Lifter, LiftResult


def __getattr__(name: str) -> Any:
    if name in ("Lifter", "LiftResult"):
        from htpose import lift

        return getattr(lift, name)
    if name == "read_keypoints":
        from htpose.data.keypoints import read_keypoints

        return read_keypoints
    raise AttributeError(f"module 'htpose' has no attribute {name!r}")
