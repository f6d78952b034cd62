"""The regression MLP for numeric table rows as a factory: ``pipeline_opt.training.models.mlp:build``."""
from __future__ import annotations

from pipeline_opt.training.model import MLP

INPUTS = ("x=float32[1024,4]", "y=float32[1024]")
STACK_ARG = "layers"


def build(in_features: int = 4, hidden: int = 256, layers: int = 2) -> MLP:
    return MLP(max(in_features, 1), hidden, layers)
