"""The training recipe: a Delta table, streamed by the loader, into a model trained with the chosen plan.

Invariants: the plan comes from the config (``plan: fixed``) or from the planner under ``budget_gib`` (``auto``);
with a budget the ladder of smaller plans is armed for out-of-memory step-down (micro-batch first). The model is
a built-in shape or a user's factory (``model.kind: factory``), whose inputs are filled from the table's columns.
Every rank reads its own shard (``DeltaDataset(rank, world_size)``, equal batch counts, so no rank waits forever);
gradients are averaged over ranks each step (all-reduce, or FSDP2's reduce-scatter for ``fsdp2`` plans); ranks
are TorchDistributor processes (``num_processes``) or, launched by ``torchrun``, the processes it started;
checkpoints (one per rank: the loader state differs) resume at the next unseen batch.
"""
from __future__ import annotations

import os
from dataclasses import asdict
from typing import Iterator, Optional

from pipeline_opt.config import build
from pipeline_opt.output import to_jsonable
from pipeline_opt.spark import master_kind
from pipeline_opt.training import TrainingError
from pipeline_opt.training.ladder import plan_ladder, resolve_device
from pipeline_opt.training.settings import TrainingConfig


def _columns(cfg: TrainingConfig) -> list[str]:
    if cfg.model.kind == "factory":
        return [cfg.model.columns.get(i.name, i.name) for i in cfg.workload().inputs]
    if cfg.model.kind == "gpt":
        if not cfg.token_column:
            raise TrainingError("model.kind 'gpt' needs token_column (an array column of token ids)")
        return [cfg.token_column]
    if not cfg.features or not cfg.label:
        raise TrainingError("model.kind 'mlp' needs features (numeric columns) and label")
    return [*cfg.features, cfg.label]


def to_model_batch(cfg: TrainingConfig, batch: dict) -> dict:
    import torch

    if cfg.model.kind == "factory":
        out = {}
        for spec in cfg.workload().inputs:  # a column tensor cast to the input's dtype, each row to its shape
            column = batch[cfg.model.columns.get(spec.name, spec.name)]
            out[spec.name] = column.to(getattr(torch, spec.dtype)).reshape(column.shape[0], *spec.shape[1:])
        return out
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


def run_training(cfg: TrainingConfig, rank: int = 0, world_size: int = 1, table: Optional[str] = None):
    """Train on ``cfg.table`` (or ``table``) in this process as ``rank`` of ``world_size``; returns TrainResult."""
    import torch

    from pipeline_opt.loader import DeltaDataset, DeltaLoader
    from pipeline_opt.training.loop import Trainer
    from pipeline_opt.training.model import build_model

    device = resolve_device(cfg)
    dataset = DeltaDataset(table or cfg.table, columns=_columns(cfg), batch_size=cfg.batch_size, shuffle=True,
                           seed=cfg.seed, rank=rank, world_size=world_size, drop_last=True)
    loader = DeltaLoader(dataset, num_workers=cfg.num_workers, persistent_workers=True)  # epochs without end
    torch.manual_seed(cfg.seed)
    if cfg.model.kind == "factory":
        workload = cfg.workload()
        model = workload.build()
        loss_fn = workload.loss_fn(model)
    else:
        model, loss_fn = build_model(cfg.model, len(cfg.features)), None
    budget = int(cfg.budget_gib * 2**30) if cfg.budget_gib is not None else None
    trainer = Trainer(model, plan_ladder(cfg, device, world_size), cfg.lr, device, budget, world_size=world_size,
                      rank=rank, measure_every=max(cfg.steps // 4, 1), micro_batch=cfg.micro_batch,
                      loss_fn=loss_fn)
    if cfg.checkpoint_dir:
        trainer.load(cfg.checkpoint_dir, loader)
    return trainer.fit(_endless(loader, cfg), cfg.steps, cfg.checkpoint_dir, cfg.checkpoint_every, loader)


def _distributed_worker(cfg_dict: dict, table: Optional[str]):
    """Body of one TorchDistributor or torchrun process: join the group (gloo on CPU, NCCL on CUDA), train this
    rank's shard."""
    import torch
    import torch.distributed as dist

    cfg = build(TrainingConfig, cfg_dict)
    cuda = resolve_device(cfg) == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    try:
        result = run_training(cfg, rank, world_size, table)
    finally:
        dist.destroy_process_group()
    return {**to_jsonable(result), "rank": rank, "world_size": world_size}


def train(cfg: TrainingConfig, table: Optional[str] = None, spark=None) -> dict:
    """Run the job: in this process, or across ``num_processes`` through Spark's ``TorchDistributor`` — local
    processes on a ``local[N]`` master, one barrier task per process on a cluster — or, started by ``torchrun``
    (``WORLD_SIZE`` > 1 in the environment), as this process's rank of torchrun's group."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ:
        out = _distributed_worker(asdict(cfg), table)
        losses = out.get("losses") or []
        return {**out, "launcher": "torchrun", "loss_start": losses[0] if losses else None,
                "loss_end": losses[-1] if losses else None}
    if cfg.num_processes == 1:
        result = run_training(cfg, table=table)
        return {**to_jsonable(result), "loss_start": result.loss_start, "loss_end": result.loss_end,
                "world_size": 1}
    from pyspark.ml.torch.distributor import TorchDistributor

    if spark is None:
        raise TrainingError(f"num_processes {cfg.num_processes} runs through TorchDistributor: "
                            "it needs a Spark session")
    local = master_kind(spark.sparkContext.master) == "local"
    out = TorchDistributor(num_processes=cfg.num_processes, local_mode=local,
                           use_gpu=resolve_device(cfg) == "cuda").run(_distributed_worker, asdict(cfg), table)
    assert out is not None  # rank 0's result; run returns None only for a script path, not a function
    losses = out.get("losses") or []
    return {**out, "world_size": cfg.num_processes, "local_mode": local,
            "loss_start": losses[0] if losses else None,
            "loss_end": losses[-1] if losses else None}
