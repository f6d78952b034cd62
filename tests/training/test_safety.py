"""Refusals: a compiler memory budget with dropout (wrong gradients, pytorch#190758) unless opted in, and a
checkpoint that tries to run code."""
from __future__ import annotations

import os
import pickle

import pytest
import torch

from pipeline_opt.training import checkpoint_io
from pipeline_opt.training.loop import Trainer
from pipeline_opt.training.planner import Plan, choose, profile_of
from pipeline_opt.training.safety import UnsafePlanError, check
from tests.training.conftest import tiny_bert

BUDGET = Plan.parse("bf16+budget:0.5+adamw+compile")


def test_recompute_budget_with_dropout_is_refused_in_one_line():
    prof = profile_of(tiny_bert())
    with pytest.raises(UnsafePlanError, match="bernoulli.*pytorch#190758") as err:
        check(BUDGET, prof)
    assert "\n" not in str(err.value) and "allow_unsafe_recompute" in str(err.value)
    check(BUDGET, prof, allow_unsafe=True)  # the opt-in
    check(Plan.parse("bf16+full+adamw"), prof)  # checkpoints replay the random state: safe


def test_the_planner_lists_but_never_picks_an_unsafe_plan(tiny_shape):
    plans = [BUDGET, Plan.parse("bf16+full+adamw")]
    choice = choose(tiny_bert(), None, "cpu", plans)
    refused = next(c for c in choice.candidates if c.plan == BUDGET.name)
    assert refused.refused and not refused.fits and refused.estimate and choice.chosen.plan == "bf16+full+adamw"
    assert choose(tiny_bert(), None, "cpu", plans, allow_unsafe=True).candidates[0].refused is None
    no_dropout = choose(tiny_shape, None, "cpu", [BUDGET])
    assert no_dropout.chosen is not None and no_dropout.chosen.plan == BUDGET.name


def test_training_job_refuses_the_unsafe_plan(tmp_path):
    from pipeline_opt.training.ladder import plan_ladder
    from pipeline_opt.training.settings import ModelSettings, TrainingConfig

    model = ModelSettings(kind="factory", factory="pipeline_opt.training.models.bert:build",
                          args=dict(vocab=256, d_model=32, layers=2, heads=2, max_len=32),
                          inputs=["input_ids=int64[4,16]<256", "labels=int64[4,16]<256"])
    cfg = TrainingConfig(batch_size=4, precision="bf16", checkpointing="budget:0.5", compile=True, model=model)
    with pytest.raises(UnsafePlanError, match="refused"):
        plan_ladder(cfg, "cpu")
    from dataclasses import replace

    assert plan_ladder(replace(cfg, allow_unsafe_recompute=True), "cpu")[0][0] == BUDGET


class _RunsCode:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # a checkpoint "copied from elsewhere" that writes a file when unpickled


def test_a_checkpoint_that_runs_code_is_refused(tmp_path, tiny_shape):
    marker = tmp_path / "ran"
    torch.save({"model": _RunsCode(str(marker)), "plan": "fp32+none+adamw"}, tmp_path / "checkpoint.pt")
    assert not marker.exists()
    with open(tmp_path / "legacy.pt", "wb") as f:  # the same in a plain pickle, as older torch.save wrote it
        pickle.dump({"model": _RunsCode(str(marker)), "plan": "fp32+none+adamw"}, f)
    with pytest.raises(checkpoint_io.CheckpointError, match="refused"):
        checkpoint_io.load(tmp_path / "legacy.pt")
    trainer = Trainer(tiny_shape.build(), [Plan()], compile_step=False)
    with pytest.raises(checkpoint_io.CheckpointError, match="refused") as err:
        trainer.load(tmp_path)
    assert not marker.exists() and "\n" not in str(err.value) and "checkpoint.pt" in str(err.value)


def test_safe_checkpoints_keep_quantized_optimizer_state(tmp_path, tiny_shape, tiny_batch):
    torch.manual_seed(0)
    trainer = Trainer(tiny_shape.build(), [Plan.parse("bf16+none+adamw8bit")], compile_step=False)
    trainer.train_step(tiny_batch)
    path = trainer.save(tmp_path)
    raw = torch.load(path, weights_only=True)  # loads with nothing but tensors and plain data
    kinds = {type(v).__name__ for s in raw["optimizer"]["state"].values() for v in s.values()}
    assert "dict" in kinds and "OptimState8bit" not in kinds
    state = checkpoint_io.load(path)
    assert any(type(v).__name__ == "OptimState8bit" for s in state["optimizer"]["state"].values()
               for v in s.values())
    assert os.path.getsize(path) > 0
