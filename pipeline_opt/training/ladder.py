"""The plans a training run starts with and steps down through on out-of-memory, and the device it runs on.

Invariants: without a budget the run uses exactly the configured plan (and micro-batch) and never changes plan;
with ``plan: fixed`` and a budget it starts at the largest micro-batch predicted to fit (unless one is set);
with ``plan: auto`` the first plan is the fastest the planner predicts to fit the budget at the largest micro-batch
that fits, and every later plan is predicted to need less memory than the one before it (the trainer halves the
micro-batch before it moves to one); every plan of a ladder shards the same way (the trainer shards once); a plan
unsafe for the model is refused in one line unless ``allow_unsafe_recompute``; ``device: cuda`` without a CUDA
device is refused, never silently replaced.
"""
from __future__ import annotations

from typing import Optional

from pipeline_opt.training import TrainingError, checkpointing, planner, safety
from pipeline_opt.training.plan import Plan
from pipeline_opt.training.predict import profile_of
from pipeline_opt.training.settings import TrainingConfig


def plan_ladder(cfg: TrainingConfig, device: str, ranks: int = 1) -> list[tuple[Plan, Optional[int]]]:
    """[(first plan, its micro-batch), then smaller ones to step down to]."""
    fixed = Plan(cfg.precision, cfg.checkpointing, cfg.optimizer, cfg.compile, cfg.sharding)
    fixed.validate()
    workload = cfg.workload()
    if cfg.plan == "fixed" and checkpointing.parse(fixed.checkpointing).kind == "budget":
        safety.check(fixed, profile_of(workload), cfg.allow_unsafe_recompute)
    if cfg.budget_gib is None:
        return [(fixed, cfg.micro_batch)]
    budget = int(cfg.budget_gib * 2**30)
    shard = fixed.shard if cfg.plan == "fixed" else None
    plans = [p for p in planner.all_plans(device, ranks=ranks) if shard is None or p.shard == shard]
    choice = planner.choose(workload, budget, device, plans, ranks, cfg.allow_unsafe_recompute)
    if cfg.plan == "auto":
        if choice.chosen is None:
            raise TrainingError(f"no plan fits budget_gib {cfg.budget_gib}: {planner.shortfall(choice, workload)}")
        first = planner.Plan.parse(choice.chosen.plan)
        return [(p, m) for p, m in planner.ladder(choice) if p.shard == first.shard]
    micro = cfg.micro_batch or planner.best_micro(workload, fixed, budget, device, ranks).micro_batch
    fixed_peak = planner.predict(workload, fixed, device, micro_batch=micro, ranks=ranks).device_bytes
    smaller = [(p, m) for p, m in planner.ladder(choice)
               if planner.predict(workload, p, device, micro_batch=m, ranks=ranks).device_bytes < fixed_peak]
    return [(fixed, micro), *smaller]


def resolve_device(cfg: TrainingConfig) -> str:
    """``cpu`` or ``cuda`` for the configured ``device`` (``auto``: CUDA when there is one)."""
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device 'cuda' was asked for but no CUDA device is available")
    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return cfg.device
