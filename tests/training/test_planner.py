"""The planner: predictions checked against measured CPU peaks, choice under budgets, batch-size finder, CLI."""
from __future__ import annotations

import json

import pytest
import torch

from pipeline_opt.training import TrainingError
from pipeline_opt.training.loop import Trainer
from pipeline_opt.training.planner import Plan, all_plans, choose, find_batch_size, ladder, predict
from pipeline_opt.training.shapes import ModelShape

MEASURED_PLANS = ["fp32+none+adamw", "bf16+none+adamw", "pure_bf16+none+adamw", "bf16+full+adamw",
                  "fp32+every:2+adamw", "bf16+ops+adamw", "bf16+full+adamw8bit", "fp32+none+adamw4bit"]


def measured_peak(shape, plan, batch) -> dict:
    torch.manual_seed(0)
    trainer = Trainer(shape.build(), [plan], device="cpu", compile_step=False, measure_every=1)
    for _ in range(2):  # the second step holds optimizer state: the steady state
        trainer.train_step(batch)
    return trainer.memory[-1]


@pytest.mark.parametrize("name", MEASURED_PLANS)
def test_prediction_within_10_percent_of_measured_peak(name, tiny_shape, tiny_batch):
    plan = Plan.parse(name)
    measured = measured_peak(tiny_shape, plan, tiny_batch)
    predicted = predict(tiny_shape, plan, "cpu")
    assert predicted.peak_bytes == pytest.approx(measured["peak"], rel=0.10)
    assert predicted.params == measured["params"] and predicted.optimizer_state == measured["optimizer_state"]


def test_reference_gpt_is_planned_without_allocating_it():
    shape = ModelShape()  # 368 M parameters: only meta and fake tensors
    fp32 = predict(shape, Plan.parse("fp32+none+adamw"))
    assert 360e6 < fp32.params / 4 < 375e6
    smaller = predict(shape, Plan.parse("bf16+full+adamw8bit"))
    assert smaller.peak_bytes < 0.5 * fp32.peak_bytes and smaller.optimizer_state < fp32.optimizer_state / 3


def test_choice_is_the_fastest_that_fits_and_ladder_shrinks(tiny_shape):
    full = choose(tiny_shape, None, "cpu")
    fp32 = next(c for c in full.candidates if c.plan == "fp32+none+adamw")
    budget = int(0.6 * fp32.peak_bytes)
    choice = choose(tiny_shape, budget, "cpu")
    assert choice.chosen.fits and choice.chosen.peak_bytes <= budget
    assert all(c.relative_speed <= choice.chosen.relative_speed for c in choice.fitting())
    steps = ladder(choice)
    peaks = [predict(tiny_shape, p, "cpu").peak_bytes for p in steps]
    assert steps[0].name == choice.chosen.plan
    assert peaks == sorted(peaks, reverse=True) and len(set(peaks)) == len(peaks)
    assert choose(tiny_shape, 1000, "cpu").chosen is None
    assert not any(p.optimizer in ("bnb8bit", "cpu_offload") or p.compile for p in all_plans("cpu"))


def test_batch_finder_lands_on_the_largest_batch_that_fits(tiny_shape):
    plan = Plan.parse("fp32+none+adamw")
    budget = predict(tiny_shape.with_batch(6), plan, "cpu").peak_bytes + 1000

    def probe(batch):  # a measured run: does this batch fit the budget?
        shape = tiny_shape.with_batch(batch)
        tokens = torch.zeros(batch, shape.seq, dtype=torch.long)
        return measured_peak(shape, plan, {"tokens": tokens})["peak"] <= budget

    predicted = find_batch_size(tiny_shape, plan, budget, "cpu")
    assert predicted == 6
    measured = find_batch_size(tiny_shape, plan, budget, "cpu", probe=probe)
    assert abs(measured - predicted) <= 1 and probe(measured) and not probe(measured + 1)


def test_plan_names_round_trip_and_errors():
    assert Plan.parse("bf16+every:2+adamw8bit+compile") == Plan("bf16", "every:2", "adamw8bit", True)
    with pytest.raises(TrainingError, match="PRECISION"):
        Plan.parse("bf16+full")
    with pytest.raises(TrainingError, match="'fp12'"):
        Plan.parse("fp12+full+adamw")


def test_memory_plan_cli_json(capsys):
    from pipeline_opt.app.cli import main

    args = ["memory-plan", "--model", "gpt", "--layers", "2", "--d-model", "64", "--heads", "4", "--vocab", "512",
            "--seq", "32", "--batch", "4", "--device", "cpu", "--budget-gib", "0.004", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["chosen"]["peak_bytes"] <= 0.004 * 2**30 and out["chosen"]["fits"]
    assert len(out["candidates"]) == len(all_plans("cpu"))
    assert main(args[:-3] + ["--budget-gib", "0.004", "--find-batch", "--plan", "fp32+none+adamw", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["max_batch"] >= 1
    assert main(["memory-plan", "--layers", "0"]) == 2
    assert "--layers '0'" in capsys.readouterr().err
