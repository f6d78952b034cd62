"""FSDP2 (``fully_shard``): parameters, gradients and optimizer state sharded over the ranks of a process group.

Invariants: each block of the model's stack is one FSDP unit and the root holds the rest, so one block's
parameters are gathered at a time (what ``timeline.fsdp_extra`` predicts); with ``offload`` the shards live in
host memory (``CPUOffloadPolicy``) and the optimizer steps there. Gradients are reduce-scattered after every
backward, micro-steps included, so a rank never holds more than one unit's unsharded gradients. Sharding is
applied once, before checkpointing wraps the blocks, so changing checkpointing later never touches the units.
Without an initialised process group the call is refused with one line.
"""
from __future__ import annotations

import torch

from pipeline_opt.training import TrainingError
from pipeline_opt.training.blocks import find_stack


def shard(model: torch.nn.Module, offload: bool = False) -> torch.nn.Module:
    """``fully_shard`` every block, then the root; returns the model (changed in place)."""
    import torch.distributed as dist
    from torch.distributed.fsdp import CPUOffloadPolicy, OffloadPolicy, fully_shard

    if not dist.is_available() or not dist.is_initialized():
        raise TrainingError("sharding 'fsdp2' needs a process group: run with num_processes > 1 "
                            "(TorchDistributor) or under torchrun")
    policy = CPUOffloadPolicy() if offload else OffloadPolicy()
    for block in find_stack(model).modules():
        fully_shard(block, offload_policy=policy)
    fully_shard(model, offload_policy=policy)
    return model


def is_sharded(model: torch.nn.Module) -> bool:
    return any(hasattr(p, "device_mesh") for p in model.parameters())

