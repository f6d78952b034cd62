"""Activation checkpointing strategies, chosen by a spec string.

Specs: ``none``; ``full`` (every block recomputes in backward); ``every:N`` (blocks 0, N, 2N, … recompute, as the
anchor's ``ckpt=N``); ``ops`` (selective by op: matmul and attention outputs are saved, everything else — norms,
GELU, casts — is recomputed); ``offload`` (saved activations move to host memory, see ``offload``).

Invariant: checkpointing never changes results — the wrapped block computes the same function with the same
parameters (the wrapper holds the original block, so unwrapping restores the model exactly).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import cast

import torch
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

from pipeline_opt.training import TrainingError

_SAVE_OPS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default,
             torch.ops.aten._scaled_dot_product_flash_attention.default,
             torch.ops.aten._scaled_dot_product_efficient_attention.default,
             torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default}


@dataclass(frozen=True)
class Checkpointing:
    """A parsed spec: ``kind`` in none/full/every/ops/offload, ``every`` the stride of ``every:N``."""

    kind: str = "none"
    every: int = 1

    @property
    def name(self) -> str:
        return f"every:{self.every}" if self.kind == "every" else self.kind

    def wraps(self, index: int) -> bool:
        """Whether block ``index`` is recomputed in backward."""
        if self.kind in ("full", "ops"):
            return True
        return self.kind == "every" and index % self.every == 0


def parse(spec: str) -> Checkpointing:
    spec = str(spec).strip()
    if spec in ("none", "full", "ops", "offload"):
        return Checkpointing(spec)
    if spec.startswith("every:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            n = 0
        if n >= 1:
            return Checkpointing("every", n) if n > 1 else Checkpointing("full")
    raise TrainingError(f"unknown checkpointing {spec!r}; allowed: none, full, every:N (N ≥ 1), ops, offload")


def _ops_policy(ctx, op, *args, **kwargs):
    return CheckpointPolicy.MUST_SAVE if op in _SAVE_OPS else CheckpointPolicy.PREFER_RECOMPUTE


class Checkpointed(torch.nn.Module):
    """Runs ``block`` under non-reentrant checkpointing (optionally with a selective-save policy)."""

    def __init__(self, block: torch.nn.Module, selective: bool = False):
        super().__init__()
        self.block = block
        self.selective = selective

    def forward(self, x):
        if not torch.is_grad_enabled():
            return self.block(x)
        kwargs = {}
        if self.selective:
            kwargs["context_fn"] = functools.partial(create_selective_checkpoint_contexts, _ops_policy)
        return checkpoint(self.block, x, use_reentrant=False, **kwargs)


class Offloaded(torch.nn.Module):
    """Runs ``block`` with its saved activations kept in host memory (pinned when on CUDA)."""

    def __init__(self, block: torch.nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x):
        from pipeline_opt.training.offload import activation_offload

        with activation_offload(x.device):
            return self.block(x)


def apply(model: torch.nn.Module, ckpt: Checkpointing) -> torch.nn.Module:
    """Wrap ``model.blocks`` in place per ``ckpt`` (re-applying first unwraps); returns the model."""
    unwrap(model)
    blocks = cast(torch.nn.ModuleList, model.blocks)  # every model here keeps its blocks in a ModuleList
    for i, block in enumerate(blocks):
        if ckpt.kind == "offload":
            blocks[i] = Offloaded(block)
        elif ckpt.wraps(i):
            blocks[i] = Checkpointed(block, selective=ckpt.kind == "ops")
    return model


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    blocks = cast(torch.nn.ModuleList, model.blocks)  # every model here keeps its blocks in a ModuleList
    for i, block in enumerate(blocks):
        if isinstance(block, (Checkpointed, Offloaded)):
            blocks[i] = block.block
    return model
