"""The training loop: out-of-memory step-down to the next plan on the same step (budget guard, real torch) once the
micro-batch is 1, checkpoints."""
from __future__ import annotations

import pytest
import torch

from pipeline_opt.training import TrainingError
from pipeline_opt.training.loop import Trainer
from pipeline_opt.training.planner import Plan


def _run(shape, batch, ladder, steps, budget=None, micro_batch=None):
    torch.manual_seed(0)
    trainer = Trainer(shape.build(), ladder, lr=1e-3, device="cpu", budget_bytes=budget, compile_step=False,
                      micro_batch=micro_batch)
    result = trainer.fit([batch] * steps, steps)
    return trainer, result


def _guard_load(shape, plan, batch) -> int:
    """What the budget guard counts for ``plan`` at micro-batch 1: held bytes + the bytes one forward saves."""
    from pipeline_opt.training import checkpointing
    from pipeline_opt.training.memory import SavedActivations

    trainer = Trainer(shape.build(), [plan], compile_step=False)
    checkpointing.apply(trainer.model, checkpointing.parse(plan.checkpointing))
    with SavedActivations(trainer.model) as meter:
        trainer.model.loss({k: v[:1] for k, v in batch.items()})
    return trainer._held + meter.bytes


def test_oom_steps_down_and_redoes_the_same_step(tiny_shape, tiny_batch, capsys):
    big, small = Plan.parse("fp32+none+adamw"), Plan.parse("fp32+full+adamw")
    budget = (_guard_load(tiny_shape, big, tiny_batch) + _guard_load(tiny_shape, small, tiny_batch)) // 2
    trainer, result = _run(tiny_shape, tiny_batch, [big, small], 3, budget, micro_batch=1)
    assert [(s.step, s.from_plan, s.to_plan) for s in result.step_downs] == [(0, big.name, small.name)]
    assert result.step_downs[0].changes == []  # same weights and optimizer: results unchanged
    assert "out of memory" in capsys.readouterr().out
    assert result.steps == 3 and len(result.losses) == 3 and result.plan == small.name
    # checkpointing does not change the math: identical to training with the small plan from the start
    _, reference = _run(tiny_shape, tiny_batch, [small], 3)
    assert result.losses == pytest.approx(reference.losses, rel=1e-5)


def test_step_down_that_changes_the_optimizer_says_so(tiny_shape, tiny_batch):
    big, small = Plan.parse("fp32+none+adamw"), Plan.parse("fp32+none+adamw8bit")
    budget = (_guard_load(tiny_shape, big, tiny_batch) + _guard_load(tiny_shape, small, tiny_batch)) // 2
    trainer, result = _run(tiny_shape, tiny_batch, [big, small], 2, budget, micro_batch=1)
    assert result.step_downs and "optimizer state restarted" in result.step_downs[0].changes[0]


def test_oom_with_no_smaller_plan_is_an_error(tiny_shape, tiny_batch):
    with pytest.raises(TrainingError, match="micro-batch 1 and no smaller plan"):
        _run(tiny_shape, tiny_batch, [Plan.parse("fp32+none+adamw")], 1, budget=10_000)


def test_checkpoint_resume_continues_identically(tiny_shape, tiny_batch, tmp_path):
    plan = [Plan.parse("bf16+full+adamwfp8")]  # quantized torchao state in the checkpoint
    _, straight = _run(tiny_shape, tiny_batch, plan, 4)
    torch.manual_seed(0)
    first = Trainer(tiny_shape.build(), plan, lr=1e-3, compile_step=False)
    first.fit([tiny_batch] * 2, 2, checkpoint_dir=tmp_path)
    torch.manual_seed(1)  # different init: everything must come from the checkpoint
    second = Trainer(tiny_shape.build(), plan, lr=1e-3, compile_step=False)
    assert second.load(tmp_path) and second.step_index == 2
    resumed = second.fit([tiny_batch] * 4, 4)
    assert resumed.first_step == 2 and resumed.losses == pytest.approx(straight.losses[2:], rel=1e-6)
    other = Trainer(tiny_shape.build(), [Plan.parse("fp32+none+adamw")], compile_step=False)
    with pytest.raises(TrainingError, match="same plan"):
        other.load(tmp_path)
