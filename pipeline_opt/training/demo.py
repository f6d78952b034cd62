"""Demo: a small MLP trained on lineitem's numeric columns, streamed by the loader, with the planner's plan."""
from __future__ import annotations

from pathlib import Path

from pipeline_opt.config import ModelSettings, TrainingConfig


def run(lakehouse: Path, out: Path, steps: int = 40, budget_gib: float = 0.0095) -> dict:
    """Train ``steps`` steps on ``lakehouse/lineitem`` under ``budget_gib`` (about 0.7× what fp32 + AdamW needs
    for this model and batch, so the planner has to save memory); returns the facts."""
    from pipeline_opt.training.job import train

    import shutil

    out = Path(out)
    shutil.rmtree(out / "training-checkpoint", ignore_errors=True)  # a rerun trains again instead of resuming
    cfg = TrainingConfig(
        table=str(Path(lakehouse) / "lineitem"), features=["l_quantity", "l_discount", "l_tax", "l_linenumber"],
        label="l_extendedprice", batch_size=1024, steps=steps, lr=3e-3, plan="auto", budget_gib=budget_gib,
        device="cpu", checkpoint_dir=str(out / "training-checkpoint"),
        model=ModelSettings(kind="mlp", hidden=256, layers=4))
    result = train(cfg)
    return {"plan": result["plan"], "budget_gib": budget_gib, "fp32_adamw_predicted_gib": round(_fp32_peak(cfg), 4),
            "steps": result["steps"],
            "loss_start": round(result["loss_start"], 4), "loss_end": round(result["loss_end"], 4),
            "steps_per_s": result["steps_per_s"], "step_downs": len(result["step_downs"]),
            "checkpoint": result["checkpoint"]}


def _fp32_peak(cfg: TrainingConfig) -> float:
    from pipeline_opt.training.job import model_shape
    from pipeline_opt.training.planner import Plan, predict

    return predict(model_shape(cfg), Plan(), "cpu").peak_gib
