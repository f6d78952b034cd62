"""FSDP2 on 2 CPU processes (gloo): each rank's measured peak against the planner's per-rank prediction, losses
equal to one process training the whole batch, and a sharded checkpoint that resumes exactly."""
from __future__ import annotations

import json
import os
import socket

import pytest
import torch

from pipeline_opt.training.loop import Trainer
from pipeline_opt.training.planner import Plan, predict
from tests.training.conftest import TINY

PLANS = ["fp32+none+adamw+fsdp2", "bf16+full+adamw+fsdp2"]
WORLD, ROWS, STEPS = 2, TINY["batch"], 3


def _shape():
    from pipeline_opt.training.shapes import ModelShape

    return ModelShape(**TINY)


def _global_batch():
    g = torch.Generator().manual_seed(0)
    return {"tokens": torch.randint(0, TINY["vocab"], (WORLD * ROWS, TINY["seq"]), generator=g)}


def _rank(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    mine = {"tokens": _global_batch()["tokens"][rank * ROWS:(rank + 1) * ROWS]}
    facts = {}
    for name in PLANS:
        torch.manual_seed(0)
        trainer = Trainer(_shape().build(), [Plan.parse(name)], device="cpu", compile_step=False, world_size=WORLD,
                          rank=rank, measure_every=1)
        losses = [trainer.train_step(mine) for _ in range(STEPS)]
        facts[name] = {"losses": losses, "peak": trainer.memory[-1]["peak"], "params": trainer.memory[-1]["params"]}
    trainer.save(out)  # the last plan's sharded state, one file per rank
    continued = trainer.train_step(mine)
    torch.manual_seed(1)  # a different start: everything must come from the checkpoint
    resumed = Trainer(_shape().build(), [Plan.parse(PLANS[-1])], device="cpu", compile_step=False,
                      world_size=WORLD, rank=rank)
    assert resumed.load(out) and resumed.step_index == STEPS
    facts["resume"] = {"continued": continued, "resumed": resumed.train_step(mine)}
    if rank == 0:
        with open(os.path.join(out, "facts.json"), "w") as f:
            json.dump(facts, f)
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    import torch.multiprocessing as mp

    out = str(tmp_path_factory.mktemp("fsdp"))
    mp.start_processes(_rank, args=(_free_port(), out), nprocs=WORLD, start_method="spawn")
    with open(os.path.join(out, "facts.json")) as f:
        return json.load(f), out


@pytest.mark.slow
@pytest.mark.parametrize("name", PLANS)
def test_per_rank_peak_matches_the_prediction(two_ranks, name):
    facts, _ = two_ranks
    predicted = predict(_shape(), Plan.parse(name), "cpu", ranks=WORLD)
    assert facts[name]["params"] == predicted.params  # each rank holds half the parameters
    assert predicted.peak_bytes == pytest.approx(facts[name]["peak"], rel=0.10)
    unsharded = predict(_shape(), Plan.parse(name.replace("+fsdp2", "")), "cpu")
    assert predicted.peak_bytes < unsharded.peak_bytes


@pytest.mark.slow
def test_losses_equal_one_process_on_the_whole_batch(two_ranks):
    facts, _ = two_ranks
    for name in PLANS:
        torch.manual_seed(0)
        single = Trainer(_shape().build(), [Plan.parse(name.replace("+fsdp2", ""))], device="cpu",
                         compile_step=False)
        losses = [single.train_step(_global_batch()) for _ in range(STEPS)]
        assert facts[name]["losses"] == pytest.approx(losses, rel=1e-4)


@pytest.mark.slow
def test_sharded_checkpoint_resumes_exactly(two_ranks):
    facts, out = two_ranks
    assert sorted(p for p in os.listdir(out) if p.endswith(".pt")) == ["checkpoint-rank0.pt", "checkpoint-rank1.pt"]
    assert facts["resume"]["resumed"] == pytest.approx(facts["resume"]["continued"], rel=1e-6)
