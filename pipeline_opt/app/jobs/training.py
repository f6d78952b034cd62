"""Training jobs: ``memory-plan`` (predict every plan, pick the fastest that fits) and ``train``."""
from __future__ import annotations

import dataclasses

from pipeline_opt.app.job import Context, Param, job, positive_float, positive_int
from pipeline_opt.config import load
from pipeline_opt.training import TrainingError
from pipeline_opt.training.settings import TrainingConfig


@job("memory-plan", "predict peak memory and speed of every training plan; pick the fastest that fits a budget",
     Param("model", "model family", default="gpt", choices=("gpt", "mlp")),
     Param("layers", "blocks", positive_int, default=24),
     Param("d_model", "width", positive_int, default=1024),
     Param("heads", "attention heads", positive_int, default=16),
     Param("vocab", "vocabulary size", positive_int, default=32000),
     Param("seq", "sequence length", positive_int, default=1024),
     Param("batch", "micro-batch size", positive_int, default=8),
     Param("in_features", "mlp: number of input columns", positive_int, default=8),
     Param("budget_gib", "device memory budget (GiB)", positive_float),
     Param("device", "device to plan for", default="cuda", choices=("cuda", "cpu")),
     Param("plan", "with --find-batch: the plan (e.g. bf16+full+adamw8bit)"),
     Param("find_batch", "largest micro-batch that fits the budget", flag=True))
def memory_plan(ctx: Context, args):
    from pipeline_opt.training import planner
    from pipeline_opt.training.shapes import ModelShape

    shape = ModelShape(args.model, args.layers, args.d_model, args.heads, args.vocab, args.seq, args.batch,
                       args.in_features)
    budget = int(args.budget_gib * 2**30) if args.budget_gib is not None else None
    if args.find_batch:
        if budget is None or args.plan is None:
            raise TrainingError("--find-batch needs --budget-gib and --plan")
        plan = planner.Plan.parse(args.plan)
        return {"plan": plan.name, "budget_gib": args.budget_gib, "device": args.device,
                "max_batch": planner.find_batch_size(shape, plan, budget, args.device)}
    return planner.choose(shape, budget, args.device)


@job("train", "train a model on a Delta table through the loader with a memory plan",
     Param("config", "training YAML (see conf/training.yml)", required=True),
     Param("table", "override the config's table path"),
     Param("steps", "override the config's steps", positive_int),
     Param("checkpoint_dir", "override the config's checkpoint folder (resumes from it when it holds one)"))
def train(ctx: Context, args):
    from pipeline_opt.app.training import train as run_train

    cfg = load(args.config, TrainingConfig)
    overrides = {k: getattr(args, k) for k in ("steps", "checkpoint_dir") if getattr(args, k) is not None}
    cfg = dataclasses.replace(cfg, **overrides)
    return run_train(cfg, table=args.table, spark=ctx.spark if cfg.num_processes > 1 else None)
