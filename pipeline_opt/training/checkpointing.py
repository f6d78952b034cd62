"""Activation checkpointing strategies, chosen by a spec string.

Specs: ``none``; ``full`` (every block recomputes in backward); ``every:N`` (blocks 0, N, 2N, … recompute, as the
anchor's ``ckpt=N``); ``ops`` (selective by op: matmul, convolution and attention outputs are saved, everything
else — norms, GELU, casts — is recomputed); ``offload`` (saved activations move to host memory, see ``offload``);
``budget:F`` (0 < F < 1: ``torch.compile``'s min-cut partitioner keeps about F of the activations and recomputes
the rest — needs ``compile``; refused with random ops such as dropout, see ``safety``).

Invariant: checkpointing never changes results — the wrapped block computes the same function with the same
parameters (the wrapper holds the original block, so unwrapping restores the model exactly). The blocks are the
model's stack (``blocks.find_stack``): its ``blocks`` attribute, or its repeated layers.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

from pipeline_opt.training import TrainingError
from pipeline_opt.training.blocks import find_stack

_SAVE_OPS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default,
             torch.ops.aten.convolution.default,
             torch.ops.aten._scaled_dot_product_flash_attention.default,
             torch.ops.aten._scaled_dot_product_efficient_attention.default,
             torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default}


@dataclass(frozen=True)
class Checkpointing:
    """A parsed spec: ``kind`` in none/full/every/ops/offload/budget, ``every`` the stride of ``every:N``,
    ``budget`` the kept fraction of ``budget:F``."""

    kind: str = "none"
    every: int = 1
    budget: float = 1.0

    @property
    def name(self) -> str:
        if self.kind == "budget":
            return f"budget:{self.budget:g}"
        return f"every:{self.every}" if self.kind == "every" else self.kind

    @property
    def period(self) -> int:
        """Blocks after which the wrapping pattern repeats."""
        return self.every if self.kind == "every" else 1

    def wrapped_count(self, blocks: int) -> int:
        """How many of ``blocks`` blocks recompute (closed form of ``sum(wraps(i))``)."""
        if self.kind in ("full", "ops"):
            return blocks
        return -(-blocks // self.every) if self.kind == "every" else 0

    def wraps(self, index: int) -> bool:
        """Whether block ``index`` is recomputed in backward."""
        if self.kind in ("full", "ops"):
            return True
        return self.kind == "every" and index % self.every == 0


def parse(spec: str) -> Checkpointing:
    spec = str(spec).strip()
    if spec in ("none", "full", "ops", "offload"):
        return Checkpointing(spec)
    if spec.startswith("budget:"):
        try:
            f = float(spec.split(":", 1)[1])
        except ValueError:
            f = -1.0
        if 0 < f < 1:
            return Checkpointing("budget", budget=f)
    if spec.startswith("every:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            n = 0
        if n >= 1:
            return Checkpointing("every", n) if n > 1 else Checkpointing("full")
    raise TrainingError(f"unknown checkpointing {spec!r}; allowed: none, full, every:N (N ≥ 1), ops, offload, "
                        "budget:F (0 < F < 1)")


def _ops_policy(ctx, op, *args, **kwargs):
    return CheckpointPolicy.MUST_SAVE if op in _SAVE_OPS else CheckpointPolicy.PREFER_RECOMPUTE


class Checkpointed(torch.nn.Module):
    """Runs ``block`` under non-reentrant checkpointing (optionally with a selective-save policy)."""

    def __init__(self, block: torch.nn.Module, selective: bool = False):
        super().__init__()
        self.block = block
        self.selective = selective

    def forward(self, *args, **kwargs):
        if not torch.is_grad_enabled():
            return self.block(*args, **kwargs)
        options = {}
        if self.selective:
            options["context_fn"] = functools.partial(create_selective_checkpoint_contexts, _ops_policy)
        return checkpoint(self.block, *args, use_reentrant=False, **options, **kwargs)


class Offloaded(torch.nn.Module):
    """Runs ``block`` with its saved activations kept in host memory (pinned when on CUDA)."""

    saved_hooks = None  # a planning trace sets its own (host copies that a fake trace can tell apart)

    def __init__(self, block: torch.nn.Module):
        super().__init__()
        self.block = block

    def forward(self, *args, **kwargs):
        from pipeline_opt.training.offload import activation_offload

        first = next(a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor))
        hooks = self.saved_hooks() if self.saved_hooks is not None else activation_offload(first.device)
        with hooks:
            return self.block(*args, **kwargs)


def apply(model: torch.nn.Module, ckpt: Checkpointing) -> torch.nn.Module:
    """Wrap the model's blocks in place per ``ckpt`` (re-applying first unwraps); returns the model. ``budget``
    wraps nothing: the compiler's partitioner decides what to recompute."""
    unwrap(model)
    stack = find_stack(model)
    if ckpt.kind not in ("none", "budget") and not len(stack):
        raise TrainingError(f"checkpointing {ckpt.name!r} needs blocks to wrap; {type(model).__name__} has no "
                            "'blocks' attribute and no repeated layers")
    for i, block in enumerate(stack.modules()):
        if ckpt.kind == "offload":
            stack.replace(i, Offloaded(block))
        elif ckpt.wraps(i):
            stack.replace(i, Checkpointed(block, selective=ckpt.kind == "ops"))
    return model


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    stack = find_stack(model)
    for i, block in enumerate(stack.modules()):
        if isinstance(block, (Checkpointed, Offloaded)):
            stack.replace(i, block.block)
    return model
