"""The denoiser network and its parts (attention, blocks, embeddings); HTP in ``htp``."""

from htpose.model.denoiser import Condition, Denoiser, ModelConfig, build_denoiser
from htpose.model.htp import HTPDenoiser

__all__ = ["Condition", "Denoiser", "HTPDenoiser", "ModelConfig", "build_denoiser"]
