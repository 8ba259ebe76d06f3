"""The spatio-temporal transformer denoiser (D3DP-style, MixSTE backbone).

One token per joint per frame. The 2D condition and the noisy 3D pose are embedded
separately and summed, which equals one linear layer on their 5-channel concatenation but
lets the condition's part (and the position embeddings) be computed once per clip and reused
for every hypothesis and diffusion step (:meth:`Denoiser.encode_condition`).

Each of the ``depth`` block pairs runs a spatial block (attention across the J joints of a
frame) then a temporal block (attention across the F frames of a joint). The timestep
embedding is added to the tokens once, before the first (spatial) block, as D3DP does.

With ``pose_context`` each joint token also embeds the whole 2D pose of its frame (one
linear map of the frame's J x 2 coordinates to J tokens), as the first layer of a
temporal-convolution lifter sees every joint at once. Without it a joint token starts from
its own two coordinates and the body's size, lean and facing (what the depth and the
orientation of the 3D pose hang on) must be gathered by spatial attention first. Off by
default so that checkpoints trained before it load unchanged.

``pose_context_hidden > 0`` adds a temporal branch to that map (:class:`PoseContext`): a
convolution over ``pose_context_frames`` frames of the whole 2D pose, a GELU and a linear
map to the J tokens, like the front of a temporal-convolution lifter. Both are a condition
encoder: they run once per clip, so their parameters cost nothing per hypothesis or
diffusion step. The defaults (0 and 1) are the single linear map above.

This module is the unpruned network only. Hierarchical Temporal Pruning lives in
:class:`htpose.model.htp.HTPDenoiser`, a subclass with the same inputs and outputs;
:func:`build_denoiser` picks the class a config asks for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from htpose.model.blocks import TransformerBlock
from htpose.model.embeddings import TimestepEmbedding
from htpose.model.pruning import FramePlan, PruningConfig
from htpose.skeleton import NUM_JOINTS

# Largest accepted sizes: far beyond any real lifter, small enough to be checked cheaply.
MODEL_LIMITS = {"frames": 10_000, "joints": 17, "width": 8192, "depth": 64, "heads": 64}


@dataclass
class ModelConfig:
    """Denoiser size. Paper size (D3DP): frames 243, width 512, depth 8, heads 8."""

    frames: int = 27
    joints: int = NUM_JOINTS
    width: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 2.0
    drop_path: float = 0.1
    dropout: float = 0.0
    pose_context: bool = False
    pose_context_hidden: int = 0
    pose_context_frames: int = 1
    # The fields a trained model may be grown by (``htpose train --init-from``).
    GROWABLE: ClassVar[tuple[str, ...]] = (
        "pose_context",
        "pose_context_hidden",
        "pose_context_frames",
    )
    pruning: PruningConfig = field(default_factory=PruningConfig)

    def validate(self) -> None:
        from htpose import budget
        from htpose.errors import ConfigError

        for name, most in MODEL_LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= most:
                raise ConfigError(f"model.{name} must be an integer in [1, {most}], got {value!r}")
        if self.width % self.heads:
            raise ConfigError(
                f"model.width ({self.width}) must be divisible by model.heads ({self.heads})"
            )
        if not 0.0 <= self.drop_path < 1.0 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.drop_path and model.dropout must be in [0, 1)")
        self._validate_pose_context()
        if not 0 < self.mlp_ratio <= 16:
            raise ConfigError(f"model.mlp_ratio must be in (0, 16], got {self.mlp_ratio}")
        self.pruning.validate(self.frames, self.depth)
        nbytes = budget.model_bytes(
            self.frames, self.joints, self.width, self.depth, self.mlp_ratio
        )
        what = f"a model of {self.frames} frames, width {self.width} and depth {self.depth}"
        if self.pose_context:
            hidden, span = self.pose_context_hidden, self.pose_context_frames
            nbytes += budget.pose_context_bytes(self.joints, self.width, hidden, span)
            what += f" with a pose context of {hidden} channels over {span} frames"
        budget.check(nbytes, what)

    def _validate_pose_context(self) -> None:
        from htpose.errors import ConfigError

        hidden, frames = self.pose_context_hidden, self.pose_context_frames
        if not isinstance(hidden, int) or not 0 <= hidden <= MODEL_LIMITS["width"]:
            raise ConfigError(
                f"model.pose_context_hidden must be an integer in [0, {MODEL_LIMITS['width']}], "
                f"got {hidden!r}"
            )
        if not isinstance(frames, int) or frames < 1 or frames % 2 == 0 or frames > self.frames:
            raise ConfigError(
                "model.pose_context_frames must be an odd integer in [1, model.frames = "
                f"{self.frames}], got {frames!r}"
            )
        if hidden and not self.pose_context:
            raise ConfigError("model.pose_context_hidden needs model.pose_context")
        if frames > 1 and not hidden:
            raise ConfigError(
                "model.pose_context_frames is the span of the temporal branch: it needs "
                "model.pose_context_hidden > 0"
            )


@dataclass
class Condition:
    """What the denoiser needs of the 2D input, computed once per clip.

    ``tokens`` ``(N, F, J, C)``: the embedded 2D with position embeddings; ``plan``: the
    frames TCEP keeps (None for the unpruned model).
    """

    tokens: torch.Tensor
    plan: FramePlan | None = None

    def repeat_interleave(self, times: int) -> Condition:
        """The condition of every window repeated ``times`` (hypotheses folded into N)."""
        plan = None if self.plan is None else self.plan.repeat_interleave(times)
        return Condition(self.tokens.repeat_interleave(times, dim=0), plan)

    def rows(self, index: slice | torch.Tensor) -> Condition:
        """The condition of the rows ``index`` (a slice or integer tensor) of N."""
        plan = None if self.plan is None else self.plan.rows(index)
        return Condition(self.tokens[index], plan)


def gather_frames(x: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Select frames ``(N, n)`` of tokens ``(N, F, J, C)`` -> ``(N, n, J, C)``."""
    # Row indexing copies whole (J, C) frames: 2.6x faster on a CPU than an expanded gather.
    return x[torch.arange(x.shape[0], device=x.device)[:, None], frames]


class FrameLinear(nn.Linear):
    """One linear map of a frame's whole 2D pose to its J tokens:
    ``(N, F, J, 2) -> (N, F, J, C)`` (an ``nn.Linear``, so its weights keep their names)."""

    def forward(self, keypoints_2d: torch.Tensor) -> torch.Tensor:
        n, f, j, _ = keypoints_2d.shape
        return super().forward(keypoints_2d.reshape(n, f, j * 2)).reshape(n, f, j, -1)


class PoseContext(FrameLinear):
    """The frame's linear map plus a temporal branch: ``(N, F, J, 2) -> (N, F, J, C)``.

    The branch is a convolution over ``frames`` frames of the whole 2D pose (edges padded by
    repeating the first and last frame, as a clip's edge holds still rather than jumping to
    the image centre), a GELU and a linear map to the J tokens. The linear map keeps
    :class:`FrameLinear`'s weight names, so a model with it grows by the branch alone.
    """

    def __init__(self, joints: int, width: int, hidden: int, frames: int) -> None:
        super().__init__(joints * 2, joints * width)
        self.hidden = nn.Conv1d(
            joints * 2, hidden, frames, padding=frames // 2, padding_mode="replicate"
        )
        self.out = nn.Linear(hidden, joints * width)

    def forward(self, keypoints_2d: torch.Tensor) -> torch.Tensor:
        n, f, j, _ = keypoints_2d.shape
        frames_last = keypoints_2d.reshape(n, f, j * 2).transpose(1, 2)  # (N, J * 2, F)
        branch = self.out(nn.functional.gelu(self.hidden(frames_last).transpose(1, 2)))
        return super().forward(keypoints_2d) + branch.reshape(n, f, j, -1)


class BlockPair(nn.Module):
    """Spatial then temporal transformer block on tokens ``(B, F, J, C)``."""

    def __init__(self, cfg: ModelConfig, drop_path: float) -> None:
        super().__init__()
        self.spatial = TransformerBlock(cfg.width, cfg.heads, cfg.mlp_ratio, drop_path, cfg.dropout)
        self.temporal = TransformerBlock(
            cfg.width, cfg.heads, cfg.mlp_ratio, drop_path, cfg.dropout
        )

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        """``memory`` ``(B, M, J, C)``: read-only extra frames for the temporal attention."""
        b, f, j, c = x.shape
        x = self.spatial(x.reshape(b * f, j, c)).reshape(b, f, j, c)
        x = x.permute(0, 2, 1, 3).reshape(b * j, f, c)
        if memory is not None:
            memory = memory.permute(0, 2, 1, 3).reshape(b * j, -1, c)
        x = self.temporal(x, memory)
        return x.reshape(b, j, f, c).permute(0, 2, 1, 3)


class Denoiser(nn.Module):
    """Predicts clean 3D poses ``y_0`` from noisy ones.

    ``forward(y_t (N, F, J, 3), t (N,), cond) -> (N, F, J, 3)`` where ``cond`` is the
    :class:`Condition` that :meth:`encode_condition` makes of the 2D keypoints ``(N, F, J, 2)``.
    """

    # Parameters a checkpoint may lack (``htpose train --init-from``): zeroed, they add nothing;
    # those under GROWN_KEEP_INIT keep their fresh values (a layer feeding a zeroed one must,
    # or no gradient would ever reach either).
    GROWN_PREFIXES = ("pose_context.",)
    GROWN_KEEP_INIT = ("pose_context.hidden.",)
    # Temporal kernels ``(..., k)`` a checkpoint may hold shorter (a branch over fewer frames):
    # padded with zeros on both sides, they compute what the short kernel did.
    GROWN_CENTRED = ("pose_context.hidden.weight",)

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.validate()
        if cfg.pruning.enabled and type(self) is Denoiser:
            raise ValueError("a config with pruning builds an HTPDenoiser: use build_denoiser")
        self.cfg = cfg
        c = cfg.width
        self.cond_embed = nn.Linear(2, c)
        # (J * 2) -> (J * C): each joint its own view of the frame's whole 2D pose.
        self.pose_context = _pose_context(cfg)
        self.pose_embed = nn.Linear(3, c, bias=False)
        self.joint_pos = nn.Parameter(torch.zeros(1, 1, cfg.joints, c))
        self.frame_pos = nn.Parameter(torch.zeros(1, cfg.frames, 1, c))
        self.time_embed = TimestepEmbedding(c)
        rates = torch.linspace(0, cfg.drop_path, cfg.depth).tolist()
        self.blocks = nn.ModuleList(BlockPair(cfg, r) for r in rates)
        self.head = nn.Sequential(nn.LayerNorm(c), nn.Linear(c, 3))
        self.apply(init_weights)
        nn.init.trunc_normal_(self.joint_pos, std=0.02)
        nn.init.trunc_normal_(self.frame_pos, std=0.02)

    def encode_condition(self, keypoints_2d: torch.Tensor) -> Condition:
        """Embed normalised 2D keypoints ``(N, F, J, 2)``."""
        self._check_shape(keypoints_2d, 2)
        tokens = self.cond_embed(keypoints_2d) + self.joint_pos + self.frame_pos
        if self.pose_context is not None:
            tokens = tokens + self.pose_context(keypoints_2d)
        return Condition(tokens)

    def embed(self, y_t: torch.Tensor, t: torch.Tensor, cond: Condition) -> torch.Tensor:
        """Tokens ``(N, F, J, C)`` of the noisy pose ``y_t`` at levels ``t`` under ``cond``."""
        self._check_shape(y_t, 3)
        return cond.tokens + self.pose_embed(y_t) + self.time_embed(t)[:, None, None, :]

    def forward(self, y_t: torch.Tensor, t: torch.Tensor, cond: Condition) -> torch.Tensor:
        x = self.embed(y_t, t, cond)
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def _check_shape(self, x: torch.Tensor, channels: int) -> None:
        expected = (self.cfg.frames, self.cfg.joints, channels)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"expected a (N, {', '.join(map(str, expected))}) tensor, got {tuple(x.shape)}"
            )


def _pose_context(cfg: ModelConfig) -> nn.Module | None:
    if not cfg.pose_context:
        return None
    if not cfg.pose_context_hidden:
        return FrameLinear(cfg.joints * 2, cfg.joints * cfg.width)
    return PoseContext(cfg.joints, cfg.width, cfg.pose_context_hidden, cfg.pose_context_frames)


def build_denoiser(cfg: ModelConfig) -> Denoiser:
    """The network ``cfg`` describes: :class:`~htpose.model.htp.HTPDenoiser` when any
    pruning is on, else :class:`Denoiser`."""
    if cfg.pruning.enabled:
        from htpose.model.htp import HTPDenoiser

        return HTPDenoiser(cfg)
    return Denoiser(cfg)


def init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
