"""Showcase of training: a small MLP trained on lineitem's numeric columns, streamed by the loader, under a memory
budget the planner has to meet."""
from __future__ import annotations

import shutil

from pipeline_opt.app.demo.inputs import DemoInputs
from pipeline_opt.app.training import train
from pipeline_opt.training.settings import ModelSettings, TrainingConfig


def run(inputs: DemoInputs, steps: int = 40, budget_gib: float = 0.0095) -> dict:
    """Train ``steps`` steps on ``lakehouse/lineitem`` under ``budget_gib`` (about 0.7× what fp32 + AdamW needs
    for this model and batch, so the planner has to save memory); returns the facts."""
    checkpoints = inputs.out / "training-checkpoint"
    shutil.rmtree(checkpoints, ignore_errors=True)  # a rerun trains again instead of resuming
    cfg = TrainingConfig(
        table=str(inputs.lakehouse / "lineitem"), features=["l_quantity", "l_discount", "l_tax", "l_linenumber"],
        label="l_extendedprice", batch_size=1024, steps=steps, lr=3e-3, plan="auto", budget_gib=budget_gib,
        device="cpu", checkpoint_dir=str(checkpoints), model=ModelSettings(kind="mlp", hidden=256, layers=4))
    result = train(cfg)
    return {"plan": result["plan"], "budget_gib": budget_gib, "predicted_peak_gib": round(_chosen_peak(cfg), 4),
            "fp32_adamw_predicted_gib": round(_fp32_peak(cfg), 4),
            "steps": result["steps"],
            "loss_start": round(result["loss_start"], 4), "loss_end": round(result["loss_end"], 4),
            "steps_per_s": result["steps_per_s"], "step_downs": len(result["step_downs"]),
            "checkpoint": result["checkpoint"]}


def _chosen_peak(cfg: TrainingConfig) -> float:
    """The predicted peak of the plan the planner chose (the first rung of the ladder the run started on)."""
    from pipeline_opt.training.ladder import plan_ladder
    from pipeline_opt.training.planner import predict

    plan, micro = plan_ladder(cfg, "cpu")[0]
    return predict(cfg.shape(), plan, "cpu", micro_batch=micro).peak_gib


def _fp32_peak(cfg: TrainingConfig) -> float:
    from pipeline_opt.training.planner import Plan, predict

    return predict(cfg.shape(), Plan(), "cpu").peak_gib
