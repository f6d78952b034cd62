"""Settings of the training job (``conf/training.yml``).

Invariants: a loaded config names a plan that exists (``plan: auto`` needs a budget); counts are at least 1;
``shape()`` is the model shape the planner predicts for, so what is planned is what is trained.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from pipeline_opt.training.shapes import ModelShape


@dataclass
class ModelSettings:
    kind: Literal["mlp", "gpt"] = "mlp"
    hidden: int = 256
    layers: int = 2
    heads: int = 4
    vocab: int = 32000
    seq_len: int = 128
    sparse_embeddings: bool = False  # gpt: nn.Embedding(sparse=True) + SparseAdam for the embedding


@dataclass
class TrainingConfig:
    """conf/training.yml. ``plan: auto`` lets the planner pick precision/checkpointing/optimizer under
    ``budget_gib``; ``fixed`` uses the three keys (with ``budget_gib`` set, a budget guard steps down on OOM)."""

    table: str = "lakehouse/lineitem"
    features: list[str] = field(default_factory=list)
    label: Optional[str] = None
    batch_size: int = 1024
    steps: int = 100
    lr: float = 1e-3
    seed: int = 0
    precision: str = "fp32"
    checkpointing: str = "none"
    optimizer: str = "adamw"
    budget_gib: Optional[float] = None
    num_workers: int = 0
    num_processes: int = 1
    checkpoint_dir: Optional[str] = None
    model: ModelSettings = field(default_factory=ModelSettings)
    plan: Literal["auto", "fixed"] = "fixed"
    compile: bool = False
    checkpoint_every: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    token_column: Optional[str] = None  # gpt: an array column of token ids

    def validate(self) -> None:
        if self.plan == "auto" and self.budget_gib is None:
            raise ValueError("plan: 'auto' needs budget_gib")
        for key in ("batch_size", "steps", "num_processes"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: {getattr(self, key)!r} must be at least 1")

    def shape(self) -> ModelShape:
        """The shape of the configured model at the configured batch size."""
        m = self.model
        return ModelShape(m.kind, m.layers, m.hidden, m.heads, m.vocab, m.seq_len, self.batch_size,
                          len(self.features))
