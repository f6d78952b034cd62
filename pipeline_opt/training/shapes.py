"""The built-in model shapes (``--model gpt|mlp``): kind, sizes and micro-batch, as a ``Workload`` to plan.

Invariant: a shape names one of the example factories (``models.gpt``, ``models.mlp``) with its ``layers`` as the
stack argument, so the planner builds at most a few blocks and counts the rest in closed form — planning 100,000
layers costs what planning 8 does; what is planned (``workload()``) is what ``build()`` trains.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from pipeline_opt.training import TrainingError
from pipeline_opt.training.workload import InputSpec, Workload


@dataclass(frozen=True)
class ModelShape:
    """Model kind and sizes plus the micro-batch: everything peak memory depends on."""

    kind: str = "gpt"
    layers: int = 24
    d_model: int = 1024
    heads: int = 16
    vocab: int = 32000
    seq: int = 1024
    batch: int = 8
    in_features: int = 0

    def with_batch(self, batch: int) -> "ModelShape":
        return replace(self, batch=batch)

    @property
    def tokens(self) -> int:
        return self.batch * (self.seq if self.kind == "gpt" else 1)

    def workload(self) -> Workload:
        if self.kind == "gpt":
            if self.d_model % self.heads:
                raise TrainingError(f"d_model {self.d_model} is not divisible by heads {self.heads}")
            args = dict(vocab=self.vocab, d_model=self.d_model, layers=self.layers, heads=self.heads)
            inputs: tuple[InputSpec, ...] = (InputSpec("tokens", "int64", (self.batch, self.seq), self.vocab),)
            return Workload("pipeline_opt.training.models.gpt:build", tuple(sorted(args.items())), inputs,
                            stack_arg="layers")
        if self.kind == "mlp":
            args = dict(in_features=max(self.in_features, 1), hidden=self.d_model, layers=self.layers)
            inputs = (InputSpec("x", "float32", (self.batch, max(self.in_features, 1))),
                      InputSpec("y", "float32", (self.batch,)))
            return Workload("pipeline_opt.training.models.mlp:build", tuple(sorted(args.items())), inputs,
                            stack_arg="layers")
        raise TrainingError(f"unknown model kind {self.kind!r}; allowed: gpt, mlp")

    def build(self, layers: Optional[int] = None):
        """The model itself (real tensors), ``layers`` blocks unless given."""
        wl = self.workload()
        return wl.build(**({} if layers is None else {"layers": layers}))

    def batch_tensors(self) -> dict:
        return self.workload().make_batch()


def as_workload(target) -> Workload:
    """A ``Workload`` from a ``ModelShape`` or a ``Workload``."""
    return target.workload() if isinstance(target, ModelShape) else target
