"""Plans known to give wrong gradients for a model, refused in one line unless the user opts in.

Invariant: ``budget:F`` checkpointing (``torch.compile``'s memory-budget partitioner) is refused for a model whose
traced step draws random numbers (dropout, ``randn_like`` …): at any budget below 1 the partitioner may recompute
those operators in backward with fresh randomness, so backward uses a different dropout mask than forward did and
the gradients are silently wrong (pytorch/pytorch#190758, #190717). The other checkpointing modes replay the saved
random state and are safe. ``allow_unsafe_recompute`` (``--allow-unsafe-recompute``) is the opt-in.
"""
from __future__ import annotations

from typing import Optional

from pipeline_opt.training import TrainingError, checkpointing


class UnsafePlanError(TrainingError):
    """A plan known to compute wrong gradients for this model (the message names the plan and the cause)."""


def refusal(plan, profile) -> Optional[str]:
    """Why ``plan`` is unsafe for the model of ``profile`` (None when it is safe)."""
    ckpt = checkpointing.parse(plan.checkpointing)
    if ckpt.kind != "budget":
        return None
    rng = sorted(profile.random_ops())
    if not rng:
        return None
    return (f"checkpointing {ckpt.name!r} with random ops in the model ({', '.join(rng)}): torch.compile's "
            "memory-budget partitioner may recompute them with fresh randomness in backward — wrong gradients "
            "(pytorch#190758); use full, every:N or ops, or opt in with allow_unsafe_recompute")


def check(plan, profile, allow_unsafe: bool = False) -> None:
    """Raise ``UnsafePlanError`` with ``refusal``'s line unless the plan is safe or the user opted in."""
    reason = None if allow_unsafe else refusal(plan, profile)
    if reason:
        raise UnsafePlanError(f"plan {plan.name!r} refused: {reason}")
