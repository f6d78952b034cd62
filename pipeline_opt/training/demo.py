"""Demo: a small MLP trained on lineitem's numeric columns, streamed by the loader, with the planner's plan."""
from __future__ import annotations

from pathlib import Path

from pipeline_opt.config import ModelSettings, TrainingConfig


def run(lakehouse: Path, out: Path, steps: int = 40, budget_gib: float = 0.05) -> dict:
    """Train ``steps`` steps on ``lakehouse/lineitem`` under a ``budget_gib`` memory budget; returns the facts."""
    from pipeline_opt.training.job import train

    out = Path(out)
    cfg = TrainingConfig(
        table=str(Path(lakehouse) / "lineitem"), features=["l_quantity", "l_discount", "l_tax", "l_linenumber"],
        label="l_extendedprice", batch_size=512, steps=steps, lr=3e-3, plan="auto", budget_gib=budget_gib,
        device="cpu", checkpoint_dir=str(out / "training-checkpoint"),
        model=ModelSettings(kind="mlp", hidden=128, layers=2))
    result = train(cfg)
    return {"plan": result["plan"], "budget_gib": budget_gib, "steps": result["steps"],
            "loss_start": round(result["loss_start"], 4), "loss_end": round(result["loss_end"], 4),
            "steps_per_s": result["steps_per_s"], "step_downs": len(result["step_downs"]),
            "checkpoint": result["checkpoint"]}
