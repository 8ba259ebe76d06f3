"""The denoiser network and its parts (attention, blocks, embeddings)."""

from htpose.model.denoiser import Condition, Denoiser, ModelConfig

__all__ = ["Condition", "Denoiser", "ModelConfig"]
