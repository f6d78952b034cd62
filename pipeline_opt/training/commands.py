"""``pipeline-opt`` subcommands of the training part: ``memory-plan`` and ``train``."""
from __future__ import annotations

from pipeline_opt.cli import add_json_flag


def register(sub) -> None:
    p = sub.add_parser("memory-plan", help="predict peak memory and speed of every training plan; pick the "
                                           "fastest that fits a budget")
    p.add_argument("--model", choices=("gpt", "mlp"), default="gpt")
    p.add_argument("--layers", type=int, default=24)
    p.add_argument("--d-model", type=int, default=1024)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--in-features", type=int, default=8, help="mlp: number of input columns")
    p.add_argument("--budget-gib", type=float, default=None, help="device memory budget (GiB)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="device to plan for (default cuda)")
    p.add_argument("--plan", default=None, help="with --find-batch: the plan (e.g. bf16+full+adamw8bit)")
    p.add_argument("--find-batch", action="store_true", help="largest micro-batch that fits the budget")
    add_json_flag(p)
    p.set_defaults(func=_memory_plan)

    t = sub.add_parser("train", help="train a model on a Delta table through the loader with a memory plan")
    t.add_argument("--config", required=True, help="training YAML (see conf/training.yml)")
    t.add_argument("--table", default=None, help="override the config's table path")
    t.add_argument("--steps", type=int, default=None, help="override the config's steps")
    add_json_flag(t)
    t.set_defaults(func=_train)


def _shape(args):
    from pipeline_opt.training import TrainingError
    from pipeline_opt.training.shapes import ModelShape

    for name in ("layers", "d_model", "heads", "vocab", "seq", "batch"):
        if getattr(args, name) < 1:
            raise TrainingError(f"--{name.replace('_', '-')} {getattr(args, name)} must be at least 1")
    return ModelShape(args.model, args.layers, args.d_model, args.heads, args.vocab, args.seq, args.batch,
                      args.in_features)


def _memory_plan(args):
    from pipeline_opt.training import TrainingError, planner

    shape = _shape(args)
    budget = int(args.budget_gib * 2**30) if args.budget_gib is not None else None
    if budget is not None and budget <= 0:
        raise TrainingError(f"--budget-gib {args.budget_gib} must be positive")
    if args.find_batch:
        if budget is None or args.plan is None:
            raise TrainingError("--find-batch needs --budget-gib and --plan")
        plan = planner.Plan.parse(args.plan)
        return {"plan": plan.name, "budget_gib": args.budget_gib, "device": args.device,
                "max_batch": planner.find_batch_size(shape, plan, budget, args.device)}
    return planner.choose(shape, budget, args.device)


def _train(args):
    from dataclasses import replace

    from pipeline_opt.config import TrainingConfig, load
    from pipeline_opt.training.job import train

    cfg = load(args.config, TrainingConfig)
    if args.steps is not None:
        cfg = replace(cfg, steps=args.steps)
    return train(cfg, table=args.table)
