"""The training job on real Delta tables through the loader: single process, resume, CLI, TorchDistributor."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import yaml

from pipeline_opt.app.training import train
from pipeline_opt.training import TrainingError
from pipeline_opt.training.settings import ModelSettings, TrainingConfig


def _cfg(table, **kw) -> TrainingConfig:
    base = dict(table=str(table), features=["l_quantity", "l_discount", "l_tax", "l_linenumber"],
                label="l_extendedprice", batch_size=256, steps=6, lr=3e-3, device="cpu",
                precision="bf16", model=ModelSettings(kind="mlp", hidden=32, layers=1))
    return TrainingConfig(**{**base, **kw})



def test_job_streams_the_table_and_learns(rows_table):
    out = train(_cfg(rows_table, steps=12))
    assert out["steps"] == 12 and out["plan"] == "bf16+none+adamw" and out["world_size"] == 1
    assert out["loss_end"] < out["loss_start"]
    assert out["memory"] and out["memory"][0]["peak"] > out["memory"][0]["params"]


def test_job_with_budget_picks_a_plan_that_fits(rows_table):
    out = train(_cfg(rows_table, plan="auto", budget_gib=0.002, steps=3))
    from pipeline_opt.training.planner import Plan, predict

    cfg = _cfg(rows_table, plan="auto", budget_gib=0.002)
    assert predict(cfg.shape(), Plan.parse(out["plan"]), "cpu").peak_bytes <= 0.002 * 2**30


def test_job_resumes_from_its_checkpoint(rows_table, tmp_path):
    ckpt = tmp_path / "ckpt"
    straight = train(_cfg(rows_table, steps=8))
    first = train(_cfg(rows_table, steps=4, checkpoint_dir=str(ckpt)))
    assert first["steps"] == 4 and (ckpt / "checkpoint.pt").exists()
    resumed = train(_cfg(rows_table, steps=8, checkpoint_dir=str(ckpt)))
    assert resumed["first_step"] == 4 and resumed["steps"] == 8
    assert resumed["losses"] == pytest.approx(straight["losses"][4:], rel=1e-5)


def test_bad_settings_are_named(rows_table):
    with pytest.raises(TrainingError, match="features"):
        train(_cfg(rows_table, features=[]))
    with pytest.raises(TrainingError, match="no plan fits"):
        train(_cfg(rows_table, plan="auto", budget_gib=1e-6))
    with pytest.raises(TrainingError, match="'sgd'"):
        train(_cfg(rows_table, optimizer="sgd"))


def test_train_cli_and_job_script(rows_table, tmp_path, capsys):
    from pipeline_opt.app.cli import main

    conf = tmp_path / "training.yml"
    data = yaml.safe_load(open("conf/training.yml"))
    data.update(table=str(rows_table), steps=3, batch_size=128, device="cpu")
    conf.write_text(yaml.safe_dump(data))
    assert main(["train", "--config", str(conf), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 3
    conf.write_text("steps: 0\n")
    assert main(["train", "--config", str(conf)]) == 2
    assert "steps" in capsys.readouterr().err


@pytest.mark.slow
def test_torch_distributor_two_processes(spark, rows_table):
    cfg = _cfg(rows_table, steps=3, num_processes=2, precision="fp32")
    out = train(cfg, spark=spark)
    assert out["world_size"] == 2 and out["rank"] in (0, 1) and out["steps"] == 3  # one rank reports
    assert all(loss == loss for loss in out["losses"])


def test_fixed_plan_with_budget_steps_down_on_the_guard(rows_table):
    from pipeline_opt.training.planner import Plan, predict

    cfg = _cfg(rows_table, precision="fp32", steps=2, model=ModelSettings(kind="mlp", hidden=64, layers=2))
    fp32 = predict(cfg.shape(), Plan(), "cpu").peak_bytes
    out = train(replace(cfg, budget_gib=0.8 * fp32 / 2**30))
    assert out["steps"] == 2 and [s["from_plan"] for s in out["step_downs"]] == ["fp32+none+adamw"]
    assert predict(cfg.shape(), Plan.parse(out["plan"]), "cpu").peak_bytes < fp32
