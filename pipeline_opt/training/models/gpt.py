"""The anchor's GPT-style decoder as a factory: ``pipeline_opt.training.models.gpt:build``."""
from __future__ import annotations

from pipeline_opt.training.model import GPT

INPUTS = ("tokens=int64[8,1024]<32000",)
STACK_ARG = "layers"


def build(vocab: int = 32000, d_model: int = 1024, layers: int = 24, heads: int = 16,
          sparse_embeddings: bool = False) -> GPT:
    """368 M parameters with the defaults (the anchor's reference model)."""
    from pipeline_opt.training import TrainingError

    if d_model % heads:
        raise TrainingError(f"d_model {d_model} is not divisible by heads {heads}")
    return GPT(vocab, d_model, layers, heads, sparse_embeddings=sparse_embeddings)
