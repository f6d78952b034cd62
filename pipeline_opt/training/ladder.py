"""The plans a training run starts with and steps down through on out-of-memory, and the device it runs on.

Invariants: without a budget the run uses exactly the configured plan and never steps down; with ``plan: auto``
the first plan is the fastest the planner predicts to fit the budget, and every later plan is predicted to need
less memory than the one before it; ``device: cuda`` without a CUDA device is refused, never silently replaced.
"""
from __future__ import annotations

from pipeline_opt.training import TrainingError, planner
from pipeline_opt.training.settings import TrainingConfig


def plan_ladder(cfg: TrainingConfig, device: str) -> list[planner.Plan]:
    """[first plan, then smaller ones to step down to]; only the configured plan without a budget."""
    fixed = planner.Plan(cfg.precision, cfg.checkpointing, cfg.optimizer, cfg.compile)
    fixed.validate()
    if cfg.budget_gib is None:
        return [fixed]
    shape = cfg.shape()
    choice = planner.choose(shape, int(cfg.budget_gib * 2**30), device)
    if cfg.plan == "auto":
        if choice.chosen is None:
            raise TrainingError(f"no plan fits budget_gib {cfg.budget_gib} for this model and batch_size "
                                f"{cfg.batch_size}; lower batch_size or raise the budget")
        return planner.ladder(choice)
    fixed_peak = planner.predict(shape, fixed, device).peak_bytes
    smaller = [p for p in planner.ladder(choice) if planner.predict(shape, p, device).peak_bytes < fixed_peak]
    return [fixed, *smaller]


def resolve_device(cfg: TrainingConfig) -> str:
    """``cpu`` or ``cuda`` for the configured ``device`` (``auto``: CUDA when there is one)."""
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device 'cuda' was asked for but no CUDA device is available")
    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return cfg.device
