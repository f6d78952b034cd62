"""Training jobs: ``memory-plan`` (predict every plan, pick the fastest that fits) and ``train``."""
from __future__ import annotations

import dataclasses

from pipeline_opt.app.job import Context, Param, job, positive_float, positive_int
from pipeline_opt.app.selection import resolve
from pipeline_opt.config import load
from pipeline_opt.training import TrainingError
from pipeline_opt.training.settings import TrainingConfig


@job("memory-plan", "will it fit? predict peak (and reserved) memory and speed of every training plan for a "
     "built-in or your own model; pick the fastest plan and micro-batch that fit a budget",
     Param("model", "gpt, mlp, or your factory as package.module:function", default="gpt"),
     Param("factory_arg", "a factory argument NAME=VALUE (repeatable)", repeat=True),
     Param("input", "a batch input NAME=DTYPE[BATCH,...] (repeatable; default: the factory module's INPUTS)",
           repeat=True),
     Param("loss", "package.module:function(output, batch) -> loss (default: model.loss, or forward's output)"),
     Param("stack_arg", "the factory argument that sets its number of identical blocks (closed-form planning)"),
     Param("config", "a training YAML (conf/training.yml): its model, batch, budget, device, ranks and plan"),
     Param("layers", "gpt/mlp: blocks", positive_int, default=24),
     Param("d_model", "gpt/mlp: width", positive_int, default=1024),
     Param("heads", "gpt: attention heads", positive_int, default=16),
     Param("vocab", "gpt: vocabulary size", positive_int, default=32000),
     Param("seq", "gpt: sequence length", positive_int, default=1024),
     Param("batch", "rows per rank and optimizer step (gpt default 8; a factory's: its inputs')", positive_int),
     Param("global_batch", "rows per optimizer step over all ranks (split into micro-batch × accumulation)",
           positive_int),
     Param("ranks", "processes the plan runs on (FSDP2 shards over them)", positive_int, default=1),
     Param("in_features", "mlp: number of input columns", positive_int, default=8),
     Param("budget_gib", "device memory budget per rank (GiB)", positive_float),
     Param("device", "device to plan for", default="cuda", choices=("cuda", "cpu")),
     Param("plan", "only this plan (e.g. bf16+full+adamw8bit); with --find-batch: the plan to size"),
     Param("find_batch", "largest micro-batch that fits the budget", flag=True),
     Param("allow_unsafe_recompute", "offer plans known to give wrong gradients with this model", flag=True))
def memory_plan(ctx: Context, args):
    from pipeline_opt.training import planner

    target, budget_gib, device, ranks, plans = _plan_target(args)
    budget = int(budget_gib * 2**30) if budget_gib is not None else None
    if args.find_batch:
        if budget is None or args.plan is None:
            raise TrainingError("--find-batch needs --budget-gib and --plan")
        plan = planner.Plan.parse(args.plan)
        return {"plan": plan.name, "budget_gib": budget_gib, "device": device,
                "max_batch": planner.find_batch_size(target, plan, budget, device)}
    choice = planner.choose(target, budget, device, plans, ranks, args.allow_unsafe_recompute)
    if budget is not None and choice.chosen is None:
        raise TrainingError(planner.shortfall(choice, target))
    return choice


def _plan_target(args):
    """(model to plan, budget GiB, device, ranks, plans or None) from the flags or a training YAML."""
    from pipeline_opt.training.planner import Plan
    from pipeline_opt.training.shapes import ModelShape
    from pipeline_opt.training.workload import factory_workload

    plans = [Plan.parse(args.plan)] if args.plan and not args.find_batch else None
    if args.config:
        cfg = load(args.config, TrainingConfig)
        device = cfg.device if cfg.device != "auto" else args.device
        fixed = Plan(cfg.precision, cfg.checkpointing, cfg.optimizer, cfg.compile, cfg.sharding)
        plans = plans or ([fixed] if cfg.plan == "fixed" else None)
        budget = args.budget_gib if args.budget_gib is not None else cfg.budget_gib
        return cfg.workload(), budget, device, cfg.num_processes, plans
    if args.model in ("gpt", "mlp"):
        target = ModelShape(args.model, args.layers, args.d_model, args.heads, args.vocab, args.seq,
                            args.batch or 8, args.in_features).workload()
    else:
        target = factory_workload(args.model, args.factory_arg, args.input, args.loss, args.stack_arg, args.batch)
    if args.global_batch:
        if args.global_batch % args.ranks:
            raise TrainingError(f"--global-batch {args.global_batch} is not divisible by --ranks {args.ranks}")
        target = target.with_batch(args.global_batch // args.ranks)
    return target, args.budget_gib, args.device, args.ranks, plans


@job("train", "train a model on a Delta table through the loader with a memory plan",
     Param("config", "training YAML (see conf/training.yml)", required=True),
     Param("table", "override the config's table (a path, or a catalog name resolved to its location)"),
     Param("steps", "override the config's steps", positive_int),
     Param("checkpoint_dir", "override the config's checkpoint folder (resumes from it when it holds one)"),
     Param("plan", "override the config's plan with this fixed one (e.g. bf16+full+adamw)"),
     Param("budget_gib", "override the config's memory budget per rank (GiB; arms the OOM step-down)",
           positive_float))
def train(ctx: Context, args):
    from pipeline_opt.app.training import train as run_train

    cfg = load(args.config, TrainingConfig)
    overrides = {k: getattr(args, k) for k in ("steps", "checkpoint_dir", "budget_gib")
                 if getattr(args, k) is not None}
    if args.plan:  # a plan given (or rolled out as training.plan) is fixed: the planner does not second-guess it
        from pipeline_opt.training.plan import Plan

        plan = Plan.parse(args.plan)
        overrides.update(plan="fixed", precision=plan.precision, checkpointing=plan.checkpointing,
                         optimizer=plan.optimizer, compile=plan.compile, sharding=plan.shard)
    cfg = dataclasses.replace(cfg, **overrides)
    table = resolve(args.table, lambda: ctx.spark).location if args.table else None
    return run_train(cfg, table=table, spark=ctx.spark if cfg.num_processes > 1 else None)
