"""Hierarchical Temporal Pruning: TCEP (frames), SFT MHSA (attention), MGPTP (tokens), recovery."""

from htpose.model.pruning.config import PruningConfig
from htpose.model.pruning.mgptp import dpc_knn_merge
from htpose.model.pruning.recovery import Recovery
from htpose.model.pruning.tcep import FramePlan, select_frames

__all__ = ["FramePlan", "PruningConfig", "Recovery", "dpc_knn_merge", "select_frames"]
