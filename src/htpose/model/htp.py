"""The HTP denoiser: the plain denoiser with Hierarchical Temporal Pruning around its blocks.

From block pair ``tcep_layer`` on, only the frames TCEP keeps are processed (chosen from the
2D in :meth:`HTPDenoiser.encode_condition`, once per clip and reused by every hypothesis
and step); SFT MHSA shapes the temporal attention over them; MGPTP merges the kept tokens at
``mgptp_layer`` (and each kept frame gets its cluster's update back after the last block);
:class:`~htpose.model.pruning.Recovery` returns every frame. TCEP and MGPTP have no weights,
so a trained model can be re-planned with other ratios and layers
(:func:`htpose.model.pruning.config.replan`). Inputs and outputs are the plain model's.
"""

from __future__ import annotations

import torch

from htpose.model.denoiser import Condition, Denoiser, ModelConfig, gather_frames, init_weights
from htpose.model.pruning import Recovery, dpc_knn_merge, select_frames


class HTPDenoiser(Denoiser):
    """:class:`~htpose.model.denoiser.Denoiser` with TCEP, SFT MHSA, MGPTP and recovery."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        if not cfg.pruning.tcep:
            raise ValueError("HTPDenoiser needs model.pruning.tcep")
        self.recovery = Recovery(cfg.frames, cfg.width, cfg.heads, cfg.pruning.recovery)
        self.recovery.apply(init_weights)

    def encode_condition(self, keypoints_2d: torch.Tensor) -> Condition:
        """Embed normalised 2D keypoints ``(N, F, J, 2)`` and choose the frames to keep
        (in training mode by ``train_scoring`` where it is set)."""
        cond = super().encode_condition(keypoints_2d)
        p = self.cfg.pruning
        count = p.kept_frames(self.cfg.frames)
        scoring = p.train_scoring if self.training and p.train_scoring else p.scoring
        plan = select_frames(keypoints_2d, count, scoring, p.graph_threshold, p.graph_radius)
        return Condition(cond.tokens, plan)

    def forward(self, y_t: torch.Tensor, t: torch.Tensor, cond: Condition) -> torch.Tensor:
        p = self.cfg.pruning
        x = self.embed(y_t, t, cond)
        full = frozen = pre_merge = merged = assign = None
        for i, block in enumerate(self.blocks):
            if i == p.tcep_layer:
                full = x
                x = gather_frames(x, cond.plan.kept)
                if not p.sft:  # the kept frames still read every frame, frozen here
                    frozen = gather_frames(full, cond.plan.pruned)
            if p.mgptp and i == p.mgptp_layer:
                pre_merge = x
                x, assign = dpc_knn_merge(x, p.merged_tokens(self.cfg.frames), p.dpc_k)
                merged = x
            x = block(x, frozen)
        kept_tokens = x
        if pre_merge is not None:
            # Unmerge: each kept frame = its own pre-merge token + its cluster's update.
            kept_tokens = pre_merge + gather_frames(x - merged, assign)
        x = self.recovery(full, kept_tokens, cond.plan.kept, x)
        return self.head(x)
