"""The planner: predictions checked against measured CPU peaks, choice under budgets, batch-size finder, closed-form
planning of deep stacks, the budget refusal, CLI."""
from __future__ import annotations

import json

import pytest
import torch

from pipeline_opt.training import TrainingError
from pipeline_opt.training.loop import Trainer
from pipeline_opt.training.planner import Plan, all_plans, choose, find_batch_size, ladder, predict, shortfall
from pipeline_opt.training.predict import profile_of
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
    assert fp32.reserved_bytes >= fp32.peak_bytes  # CUDA: the caching allocator's segments hold the blocks


def test_deep_stack_is_planned_in_closed_form():
    deep = ModelShape("gpt", 100_000, 64, 4, 512, 32, 4)
    prof = profile_of(deep.workload())
    built = prof._model(torch.float32)
    assert prof.stack_blocks == 100_000 and len(built.blocks) <= 8  # the planner built a few blocks, not 100,000
    per_block = sum(p.numel() for p in built.blocks[0].parameters())
    rest = sum(p.numel() for p in built.parameters()) - len(built.blocks) * per_block
    pred = predict(deep, Plan.parse("fp32+none+adamw"), "cpu")
    assert pred.params == 4 * (rest + 100_000 * per_block)


def test_closed_form_equals_tracing_every_block(monkeypatch):
    from pipeline_opt.training import predict as predict_module
    from pipeline_opt.training import profile

    shape = ModelShape("gpt", 12, 64, 4, 512, 32, 4)
    names = ["fp32+none+adamw", "bf16+full+adamw", "fp32+every:2+adamw"]
    closed = [predict(shape, Plan.parse(n), "cpu").peak_bytes for n in names]
    monkeypatch.setattr(profile, "MAX_TRACED_BLOCKS", 64)
    monkeypatch.setattr(predict_module, "_PROFILES", type(predict_module._PROFILES)())
    traced = [predict(shape, Plan.parse(n), "cpu").peak_bytes for n in names]
    assert closed == traced


def test_choice_is_the_fastest_that_fits_and_ladder_shrinks(tiny_shape):
    full = choose(tiny_shape, None, "cpu")
    fp32 = next(c for c in full.candidates if c.plan == "fp32+none+adamw")
    budget = int(0.6 * fp32.peak_bytes)
    choice = choose(tiny_shape, budget, "cpu")
    assert choice.chosen.fits and choice.chosen.peak_bytes <= budget
    assert all(c.relative_speed <= choice.chosen.relative_speed for c in choice.fitting())
    steps = ladder(choice)
    peaks = [predict(tiny_shape, p, "cpu", micro_batch=m).peak_bytes for p, m in steps]
    assert steps[0] == (Plan.parse(choice.chosen.plan), choice.chosen.micro_batch)
    assert peaks == sorted(peaks, reverse=True) and len(set(peaks)) == len(peaks)
    assert choose(tiny_shape, 1000, "cpu").chosen is None
    assert not any(p.optimizer in ("bnb8bit", "cpu_offload") or p.compile for p in all_plans("cpu"))


def test_budget_below_every_plan_says_what_is_missing_and_what_helps(tiny_shape, capsys):
    from pipeline_opt.app.cli import main

    smallest = min(choose(tiny_shape, None, "cpu").candidates, key=lambda c: c.peak_bytes).peak_bytes
    budget = smallest - 100_000
    line = shortfall(choose(tiny_shape, budget, "cpu"), tiny_shape)
    from pipeline_opt.units import format_size

    assert f"is {format_size(100_000)} short" in line and "ranks (FSDP2) would help most (fits" in line
    args = ["memory-plan", "--model", "gpt", "--layers", "2", "--d-model", "64", "--heads", "4", "--vocab", "512",
            "--seq", "32", "--batch", "4", "--device", "cpu", "--budget-gib", f"{budget / 2**30:.6f}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "short of the smallest plan" in err and "FSDP2" in err


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
    assert Plan.parse("bf16+full+adamw+fsdp2").shard == "fsdp2"
    assert Plan.parse("bf16+none+adamw+compile+fsdp2_offload").name == "bf16+none+adamw+compile+fsdp2_offload"
    with pytest.raises(TrainingError, match="PRECISION"):
        Plan.parse("bf16+full")
    with pytest.raises(TrainingError, match="'fp12'"):
        Plan.parse("fp12+full+adamw")
    with pytest.raises(TrainingError, match="needs \\+compile"):
        Plan.parse("bf16+budget:0.5+adamw")
    with pytest.raises(TrainingError, match="pure_bf16"):
        Plan.parse("pure_bf16+none+adamw+fsdp2")


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
