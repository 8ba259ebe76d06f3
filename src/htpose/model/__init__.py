"""The denoiser network and its parts (attention, blocks, embeddings)."""

from htpose.model.denoiser import Denoiser, ModelConfig

__all__ = ["Denoiser", "ModelConfig"]
