"""A plan: precision, activation checkpointing, optimizer, ``torch.compile``, and how parameters are placed.

Names read ``PRECISION+CHECKPOINTING+OPTIMIZER[+compile][+fsdp2|+fsdp2_offload]``, e.g. ``bf16+full+adamw8bit``
or ``bf16+none+adamw+fsdp2``. ``fsdp2`` shards parameters, gradients and optimizer state over the ranks of the
run (``fully_shard`` per block and on the root); ``fsdp2_offload`` keeps those shards in host memory as well.
Invariant: ``Plan.parse(plan.name) == plan`` and a parsed plan names only techniques that exist.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline_opt.training import TrainingError, checkpointing, optimizers
from pipeline_opt.training.precision import get_precision

SHARDING = ("none", "fsdp2", "fsdp2_offload")


@dataclass(frozen=True)
class Plan:
    precision: str = "fp32"
    checkpointing: str = "none"
    optimizer: str = "adamw"
    compile: bool = False
    shard: str = "none"

    @property
    def name(self) -> str:
        tail = (["compile"] if self.compile else []) + ([self.shard] if self.shard != "none" else [])
        return "+".join([self.precision, self.checkpointing, self.optimizer, *tail])

    @property
    def sharded(self) -> bool:
        return self.shard != "none"

    @classmethod
    def parse(cls, name: str) -> "Plan":
        parts = str(name).split("+")
        extras = parts[3:]
        known = {"compile", "fsdp2", "fsdp2_offload"}
        if len(parts) < 3 or any(e not in known for e in extras) or len(set(extras)) != len(extras) or \
                sum(e.startswith("fsdp2") for e in extras) > 1:
            raise TrainingError(f"plan {name!r} is not PRECISION+CHECKPOINTING+OPTIMIZER[+compile]"
                                "[+fsdp2|+fsdp2_offload]")
        shard = next((e for e in extras if e.startswith("fsdp2")), "none")
        plan = cls(parts[0], parts[1], parts[2], "compile" in extras, shard)
        plan.validate()
        return plan

    def validate(self) -> None:
        get_precision(self.precision)
        ckpt = checkpointing.parse(self.checkpointing)
        optimizers.get_spec(self.optimizer)
        if self.shard not in SHARDING:
            raise TrainingError(f"sharding {self.shard!r} is not one of {', '.join(SHARDING)}")
        if ckpt.kind == "budget" and not self.compile:
            raise TrainingError(f"checkpointing {self.checkpointing!r} is torch.compile's memory budget: "
                                "the plan needs +compile")
        if self.sharded and self.precision == "pure_bf16":
            raise TrainingError(f"plan {self.name!r}: with FSDP2 use bf16 (autocast) instead of pure_bf16 "
                                "(the shards keep fp32 master weights)")
