"""The training job: a Delta table, streamed by the loader, into a model trained with the chosen plan.

Invariants: the plan comes from the config (``plan: fixed``) or from the planner under ``budget_gib`` (``auto``);
with a budget the ladder of smaller plans is armed for out-of-memory step-down. Every rank reads its own shard
(``DeltaDataset(rank, world_size)``, equal batch counts, so no rank waits forever); gradients are averaged over
ranks each step; checkpoints (one per rank: the loader state differs) resume at the next unseen batch.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Iterator, Optional

from pipeline_opt.config import TrainingConfig
from pipeline_opt.training import TrainingError


def model_shape(cfg: TrainingConfig):
    from pipeline_opt.training.shapes import ModelShape

    m = cfg.model
    return ModelShape(m.kind, m.layers, m.hidden, m.heads, m.vocab, m.seq_len, cfg.batch_size, len(cfg.features))


def plan_ladder(cfg: TrainingConfig, device: str) -> list:
    """[first plan, then smaller ones to step down to]; only the configured plan without a budget."""
    from pipeline_opt.training import planner

    fixed = planner.Plan(cfg.precision, cfg.checkpointing, cfg.optimizer, cfg.compile)
    fixed.validate()
    if cfg.budget_gib is None:
        return [fixed]
    choice = planner.choose(model_shape(cfg), int(cfg.budget_gib * 2**30), device)
    if cfg.plan == "auto":
        if choice.chosen is None:
            raise TrainingError(f"no plan fits budget_gib {cfg.budget_gib} for this model and batch_size "
                                f"{cfg.batch_size}; lower batch_size or raise the budget")
        return planner.ladder(choice)
    fixed_peak = planner.predict(model_shape(cfg), fixed, device).peak_bytes
    smaller = [p for p in planner.ladder(choice) if planner.predict(model_shape(cfg), p, device).peak_bytes < fixed_peak]
    return [fixed, *smaller]


def _columns(cfg: TrainingConfig) -> list[str]:
    if cfg.model.kind == "gpt":
        if not cfg.token_column:
            raise TrainingError("model.kind 'gpt' needs token_column (an array column of token ids)")
        return [cfg.token_column]
    if not cfg.features or not cfg.label:
        raise TrainingError("model.kind 'mlp' needs features (numeric columns) and label")
    return [*cfg.features, cfg.label]


def to_model_batch(cfg: TrainingConfig, batch: dict) -> dict:
    import torch

    if cfg.model.kind == "gpt":
        return {"tokens": batch[cfg.token_column].long()}
    x = torch.stack([batch[f].float() for f in cfg.features], dim=1)
    return {"x": x, "y": batch[cfg.label].float()}


def _endless(loader, cfg: TrainingConfig) -> Iterator[dict]:
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield to_model_batch(cfg, batch)
        if empty:
            return


def resolve_device(cfg: TrainingConfig) -> str:
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device 'cuda' was asked for but no CUDA device is available")
    return "cuda" if cfg.device == "auto" and torch.cuda.is_available() else ("cpu" if cfg.device == "auto"
                                                                                 else cfg.device)


def run_training(cfg: TrainingConfig, rank: int = 0, world_size: int = 1, table: Optional[str] = None):
    """Train on ``cfg.table`` (or ``table``) in this process as ``rank`` of ``world_size``; returns TrainResult."""
    import torch

    from pipeline_opt.loader import DeltaDataset, DeltaLoader
    from pipeline_opt.training.loop import Trainer
    from pipeline_opt.training.model import build_model

    device = resolve_device(cfg)
    dataset = DeltaDataset(table or cfg.table, columns=_columns(cfg), batch_size=cfg.batch_size, shuffle=True,
                           seed=cfg.seed, rank=rank, world_size=world_size, drop_last=True)
    loader = DeltaLoader(dataset, num_workers=cfg.num_workers)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, len(cfg.features))
    budget = int(cfg.budget_gib * 2**30) if cfg.budget_gib is not None else None
    trainer = Trainer(model, plan_ladder(cfg, device), cfg.lr, device, budget, world_size=world_size,
                      rank=rank, measure_every=max(cfg.steps // 4, 1))
    if cfg.checkpoint_dir:
        trainer.load(cfg.checkpoint_dir, loader)
    return trainer.fit(_endless(loader, cfg), cfg.steps, cfg.checkpoint_dir, cfg.checkpoint_every, loader)


def _distributed_worker(cfg_dict: dict, table: Optional[str]):
    """Body of one TorchDistributor process: join the gloo group, train this rank's shard."""
    import torch.distributed as dist

    from pipeline_opt.config import _build
    from pipeline_opt.output import to_jsonable

    cfg = _build(TrainingConfig, cfg_dict, "")
    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    try:
        result = run_training(cfg, rank, world_size, table)
    finally:
        dist.destroy_process_group()
    return {**to_jsonable(result), "rank": rank, "world_size": world_size}


def train(cfg: TrainingConfig, table: Optional[str] = None, spark=None) -> dict:
    """Run the job: in this process, or across ``num_processes`` through Spark's ``TorchDistributor`` — local
    processes on a ``local[N]`` master, one barrier task per process on a cluster."""
    from pipeline_opt.output import to_jsonable

    if cfg.num_processes == 1:
        result = run_training(cfg, table=table)
        return {**to_jsonable(result), "loss_start": result.loss_start, "loss_end": result.loss_end,
                "world_size": 1}
    from pyspark.ml.torch.distributor import TorchDistributor

    from pipeline_opt.cluster import master_kind

    if spark is None:  # TorchDistributor uses the active session
        from pipeline_opt.spark import get_spark

        spark = get_spark("pipeline_opt-train")
    local = master_kind(spark.sparkContext.master) == "local"
    out = TorchDistributor(num_processes=cfg.num_processes, local_mode=local,
                           use_gpu=resolve_device(cfg) == "cuda").run(_distributed_worker, asdict(cfg), table)
    losses = out.get("losses") or []
    return {**out, "world_size": cfg.num_processes, "local_mode": local,
            "loss_start": losses[0] if losses else None,
            "loss_end": losses[-1] if losses else None}
