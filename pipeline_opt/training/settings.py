"""Settings of the training job (``conf/training.yml``).

Invariants: a loaded config names a plan that exists (``plan: auto`` needs a budget); counts are at least 1;
``workload()`` is the model and batch the planner predicts for, so what is planned is what is trained: the
built-in ``mlp`` / ``gpt`` shapes, or ``kind: factory`` with ``factory: package.module:function``, its ``args``,
and ``inputs`` (``name=dtype[batch_size,...]``, filled from the table column of the same name or ``columns``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from pipeline_opt.training.shapes import ModelShape
from pipeline_opt.training.workload import InputSpec, Workload

# Beyond any model one machine plans: bounds the planner's work on absurd shapes.
_MAX_DIMENSION = 10**7


@dataclass
class ModelSettings:
    kind: Literal["mlp", "gpt", "factory"] = "mlp"
    hidden: int = 256
    layers: int = 2
    heads: int = 4
    vocab: int = 32000
    seq_len: int = 128
    sparse_embeddings: bool = False  # gpt: nn.Embedding(sparse=True) + SparseAdam for the embedding
    factory: Optional[str] = None    # factory: package.module:function returning an nn.Module
    args: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # input name -> table column (default: the same name)
    loss: Optional[str] = None       # package.module:function(output, batch) -> loss
    stack_arg: Optional[str] = None  # the factory argument that sets how many identical blocks it stacks

    def validate(self) -> None:
        for key in ("hidden", "layers", "heads", "vocab", "seq_len"):
            if not 1 <= getattr(self, key) <= _MAX_DIMENSION:
                raise ValueError(f"model.{key}: {getattr(self, key)!r} must be a whole number from 1 to "
                                 f"{_MAX_DIMENSION}")
        if self.kind == "factory" and (not self.factory or not self.inputs):
            raise ValueError("model.kind 'factory' needs model.factory (package.module:function) and model.inputs")


@dataclass
class TrainingConfig:
    """conf/training.yml. ``plan: auto`` lets the planner pick precision/checkpointing/optimizer and the
    micro-batch under ``budget_gib``; ``fixed`` uses the keys (with ``budget_gib`` set, a budget guard steps down
    on OOM: the micro-batch first, then smaller plans)."""

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
    micro_batch: Optional[int] = None   # rows per forward (the rest accumulated); null: the planner's or all
    sharding: Literal["none", "fsdp2", "fsdp2_offload"] = "none"
    allow_unsafe_recompute: bool = False

    def validate(self) -> None:
        if self.plan == "auto" and self.budget_gib is None:
            raise ValueError("plan: 'auto' needs budget_gib")
        for key in ("batch_size", "steps", "num_processes"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: {getattr(self, key)!r} must be at least 1")
        for key in ("num_workers", "checkpoint_every"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}: {getattr(self, key)!r} must be at least 0")
        if not self.lr > 0:
            raise ValueError(f"lr: {self.lr!r} must be a positive learning rate")
        if self.budget_gib is not None and not 0 < self.budget_gib <= 2**20:
            raise ValueError(f"budget_gib: {self.budget_gib!r} must be a positive number of GiB (at most 1048576)")
        if self.micro_batch is not None and not 1 <= self.micro_batch <= self.batch_size:
            raise ValueError(f"micro_batch: {self.micro_batch!r} must be between 1 and batch_size "
                             f"{self.batch_size}")
        for text in self.model.inputs:
            spec = InputSpec.parse(text)
            if spec.shape[0] != self.batch_size:
                raise ValueError(f"model.inputs {text!r}: first dimension {spec.shape[0]} is not batch_size "
                                 f"{self.batch_size}")

    def shape(self) -> ModelShape:
        """The shape of the configured built-in model at the configured batch size."""
        m = self.model
        return ModelShape(m.kind, m.layers, m.hidden, m.heads, m.vocab, m.seq_len, self.batch_size,
                          len(self.features))

    def workload(self) -> Workload:
        """What the planner plans and the job trains: one rank's rows per optimizer step."""
        m = self.model
        if m.kind != "factory":
            return self.shape().workload()
        assert m.factory is not None  # validate() requires it
        return Workload.of(m.factory, m.args, m.inputs, m.loss, m.stack_arg)
