"""Micro-batch × accumulation: the planner picks it under a budget before it changes the plan, the trainer's
accumulated step equals the whole batch's, and an out-of-memory step lowers the micro-batch first."""
from __future__ import annotations

import json

import pytest
import torch

from pipeline_opt.training import checkpointing
from pipeline_opt.training.loop import Trainer
from pipeline_opt.training.planner import Plan, choose, predict
from pipeline_opt.training.precision import get_precision
from pipeline_opt.training.profile import Profile


def test_one_pair_of_traces_answers_every_micro_batch(tiny_shape):
    prof = Profile(tiny_shape.workload())  # its own traces, not the cache other tests of this process filled
    prec, ckpt = get_precision("bf16"), checkpointing.parse("full")
    linear = prof.traced(prec, ckpt, 4, linear=True).timeline
    for micro in (1, 2, 3):
        exact = prof.traced(prec, ckpt, micro).timeline
        assert linear.linear and linear.live(micro).max() == exact.live(micro).max()


def test_planner_lowers_the_micro_batch_before_checkpointing(tiny_shape):
    plans = [Plan.parse("fp32+none+adamw"), Plan.parse("fp32+full+adamw")]
    whole = predict(tiny_shape, plans[0], "cpu")
    half = predict(tiny_shape, plans[0], "cpu", micro_batch=2)
    assert half.accumulation == 2 and half.peak_bytes < whole.peak_bytes
    choice = choose(tiny_shape, (whole.peak_bytes + half.peak_bytes) // 2, "cpu", plans)
    assert (choice.chosen.plan, choice.chosen.micro_batch, choice.chosen.accumulation) == ("fp32+none+adamw", 2, 2)


def test_accumulated_step_equals_the_whole_batch(tiny_shape, tiny_batch):
    results = []
    for micro in (None, 2, 1):
        torch.manual_seed(0)
        trainer = Trainer(tiny_shape.build(), [Plan()], device="cpu", compile_step=False, micro_batch=micro)
        losses = [trainer.train_step(tiny_batch) for _ in range(3)]
        results.append((losses, trainer.model.head.weight.detach().clone()))
    for losses, weight in results[1:]:
        assert losses == pytest.approx(results[0][0], rel=1e-5)
        torch.testing.assert_close(weight, results[0][1], rtol=1e-4, atol=1e-6)


def test_out_of_memory_lowers_the_micro_batch_before_the_plan(tiny_shape, tiny_batch):
    big, small = Plan.parse("fp32+none+adamw"), Plan.parse("fp32+full+adamw")
    budget = predict(tiny_shape, big, "cpu", micro_batch=2).peak_bytes  # fits at micro-batch 2, not at 4
    torch.manual_seed(0)
    trainer = Trainer(tiny_shape.build(), [big, small], device="cpu", budget_bytes=budget, compile_step=False)
    result = trainer.fit([tiny_batch] * 2, 2)
    first = result.step_downs[0]
    assert (first.from_plan, first.to_plan) == (big.name, big.name) and "micro-batch 4 → 2" in first.changes[0]
    assert result.plan == big.name and result.micro_batch <= 2 and result.steps == 2


def test_cli_global_batch_over_ranks(capsys):
    from pipeline_opt.app.cli import main

    args = ["memory-plan", "--model", "gpt", "--layers", "2", "--d-model", "64", "--heads", "4", "--vocab", "512",
            "--seq", "32", "--global-batch", "8", "--ranks", "2", "--device", "cpu", "--budget-gib", "0.004",
            "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["batch"] == 4 and out["ranks"] == 2
    chosen = out["chosen"]
    assert chosen["micro_batch"] * chosen["accumulation"] == 4 and chosen["peak_bytes"] <= 0.004 * 2**30
    assert any(c["plan"].endswith("+fsdp2") for c in out["candidates"])
    assert main(args[:-5] + ["--ranks", "3", "--device", "cpu"]) == 2
    assert "--global-batch 8 is not divisible by --ranks 3" in capsys.readouterr().err
