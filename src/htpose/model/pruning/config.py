"""Settings of Hierarchical Temporal Pruning (the ``model.pruning`` section of a config).

The source paper publishes neither the layer indices, the ratios nor the exact graph formula
(its sensitivity study names a graph threshold, a kept-frame count and a window length), so
every choice is an option here. The defaults come from the CMU ablation recorded in
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from htpose.errors import ConfigError

SCORINGS = ("motion_graph", "keyframe", "uniform", "random")


@dataclass
class PruningConfig:
    """HTP switches and hyperparameters.

    - ``tcep``: keep only essential frames from block pair ``tcep_layer`` on (0 = before the
      first pair); ``keep_ratio`` (r1) of the frames are kept, always both ends.
    - ``graph_threshold`` (eta): edges of the temporal motion graph weaker than this cosine
      correlation are dropped; ``graph_radius``: frames further apart are never connected.
    - ``scoring``: ``"motion_graph"`` (TCEP proper), ``"keyframe"`` (the frames worst
      predicted by interpolating their kept neighbours' 2D, greedily; see
      :mod:`htpose.model.pruning.tcep`), or the ablation controls ``"uniform"`` (evenly
      spaced frames) and ``"random"`` (random frames, both ends kept, redrawn every call
      from torch's global generator).
    - ``train_scoring``: the frame choice while training (``None``: ``scoring``). Random
      plans in training, so that every frame is sometimes kept and the deep blocks see
      varied spacings, beat training on TCEP's own plan on `val` (3 seeds each, TCEP's plan
      at inference: 85.2 +- 1.0 mm against 87.1 +- 0.9), and with them the choice at
      inference hardly matters (motion graph, evenly spaced and random within 0.4 mm;
      benchmarks/RESULTS.md, section 2).
    - ``sft``: temporal attention after TCEP runs over the kept frames only; without it the
      kept frames still attend to every frame (the pruned ones frozen at ``tcep_layer``).
      Sparser SFT (top-k keys, a local band of kept frames) was tried and removed: after
      TCEP and MGPTP the temporal attention is a small share of the MACs, so it saved at most
      1.5 % and ran slower (benchmarks/RESULTS.md, section 2).
    - ``mgptp``: at block pair ``mgptp_layer`` merge the kept tokens into ``merge_ratio``
      (r2) of their number by mask-guided density-peak clustering (``dpc_k`` neighbours).
    - ``recovery``: ``"propagate"`` (kept frames get their processed tokens back and pass
      their updates on to the pruned frames, then cross-attention) or ``"attend"``
      (cross-attention alone, HoT-like); see :mod:`htpose.model.pruning.recovery`.
    """

    tcep: bool = False
    tcep_layer: int = 0
    keep_ratio: float = 0.5
    graph_threshold: float = 0.5
    graph_radius: int = 4
    scoring: str = "motion_graph"
    train_scoring: str | None = None
    sft: bool = True
    mgptp: bool = False
    mgptp_layer: int = 2
    merge_ratio: float = 0.5
    dpc_k: int = 2
    recovery: str = "propagate"

    @property
    def enabled(self) -> bool:
        return self.tcep

    def kept_frames(self, frames: int) -> int:
        """Frames kept by TCEP out of a window of ``frames`` (both ends at least)."""
        return min(frames, max(2, _round(self.keep_ratio * frames)))

    def merged_tokens(self, frames: int) -> int:
        """Frame tokens left after MGPTP."""
        return max(1, _round(self.merge_ratio * self.kept_frames(frames)))

    def validate(self, frames: int, depth: int) -> None:
        if not self.tcep:
            if self.mgptp:
                raise ConfigError(
                    "model.pruning.mgptp needs model.pruning.tcep (it merges the kept frames)"
                )
            return
        if not 0.0 < self.keep_ratio <= 1.0:
            raise ConfigError(f"model.pruning.keep_ratio must be in (0, 1], got {self.keep_ratio}")
        if not 0 <= self.tcep_layer < depth:
            raise ConfigError(
                f"model.pruning.tcep_layer must be in [0, {depth - 1}], got {self.tcep_layer}"
            )
        if frames < 2 or _round(self.keep_ratio * frames) < 2:
            raise ConfigError(
                f"a window of {frames} frames is shorter than the kept budget allows: "
                f"keep_ratio {self.keep_ratio} keeps {_round(self.keep_ratio * frames)} frames, "
                "TCEP needs 2"
            )
        for key in ("scoring", "train_scoring"):
            value = getattr(self, key)
            if value not in SCORINGS and (key == "scoring" or value is not None):
                raise ConfigError(f"model.pruning.{key} must be one of {', '.join(SCORINGS)}")
        if not -1.0 <= self.graph_threshold < 1.0 or self.graph_radius < 1:
            raise ConfigError(
                "model.pruning.graph_threshold must be in [-1, 1) and graph_radius >= 1"
            )
        if self.recovery not in ("propagate", "attend"):
            raise ConfigError("model.pruning.recovery must be 'propagate' or 'attend'")
        if self.mgptp:
            if not self.tcep_layer < self.mgptp_layer < depth:
                raise ConfigError(
                    f"model.pruning.mgptp_layer must be in [{self.tcep_layer + 1}, {depth - 1}], "
                    f"got {self.mgptp_layer}"
                )
            if not 0.0 < self.merge_ratio <= 1.0:
                raise ConfigError(
                    f"model.pruning.merge_ratio must be in (0, 1], got {self.merge_ratio}"
                )
            if self.dpc_k < 1:
                raise ConfigError("model.pruning.dpc_k must be at least 1")


def _round(x: float) -> int:
    """Round half up (Python's round() goes to even: 40.5 -> 40)."""
    return math.floor(x + 0.5)


def replan(
    model_cfg,
    keep_ratio: float | None = None,
    merge_ratio: float | None = None,
    tcep_layer: int | None = None,
    mgptp_layer: int | None = None,
    scoring: str | None = None,
) -> None:
    """Re-plan a trained HTP model's pruning in place (``model_cfg``: its ``ModelConfig``).

    TCEP and MGPTP have no weights, so the kept share, the merged share, the layers where
    they act and the way frames are chosen (``scoring``) can change after training. Refused
    for an unpruned model, for MGPTP settings on a model without MGPTP, and for values the
    config would refuse.
    """
    from dataclasses import replace

    changes = {
        k: v
        for k, v in dict(
            keep_ratio=keep_ratio, merge_ratio=merge_ratio, tcep_layer=tcep_layer,
            mgptp_layer=mgptp_layer, scoring=scoring,
        ).items()
        if v is not None
    }  # fmt: skip
    if not changes:
        return
    p = model_cfg.pruning
    if not p.tcep:
        raise ConfigError(
            f"--{next(iter(changes)).replace('_', '-')} needs an HTP checkpoint; this model is "
            "not pruned"
        )
    if not p.mgptp and ({"merge_ratio", "mgptp_layer"} & set(changes)):
        raise ConfigError("this HTP checkpoint has no MGPTP: --merge-ratio/--mgptp-layer")
    if scoring is not None and scoring not in SCORINGS:
        raise ConfigError(f"--scoring must be one of {', '.join(SCORINGS)}, got {scoring!r}")
    for name in ("keep_ratio", "merge_ratio"):
        value = changes.get(name)
        if value is not None and not (math.isfinite(value) and 0.0 < value <= 1.0):
            raise ConfigError(f"--{name.replace('_', '-')} must be in (0, 1], got {value}")
    new = replace(p, **changes)
    new.validate(model_cfg.frames, model_cfg.depth)
    model_cfg.pruning = new
