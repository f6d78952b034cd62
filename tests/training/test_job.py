"""The training job on real Delta tables through the loader: single process, resume, CLI, TorchDistributor."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
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
    # the run's facts as the recorder maps them: on CPU the profiler's peak, reserved = allocated (no pool)
    assert out["peak_allocated_bytes"] == out["peak_reserved_bytes"] == max(m["peak"] for m in out["memory"])
    assert out["oom_step_downs"] == 0 and 0 < out["tokens_per_s"]  # an mlp: one token per row
    assert out["tokens_per_s"] == pytest.approx(out["steps_per_s"] * 256, rel=0.05)


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
    planned = train(replace(cfg, budget_gib=0.8 * fp32 / 2**30))  # sized up front: nothing to step down
    assert planned["micro_batch"] < 256 and not planned["step_downs"]
    out = train(replace(cfg, budget_gib=0.8 * fp32 / 2**30, micro_batch=256))  # forced too large: the guard trips
    assert out["steps"] == 2 and out["step_downs"][0]["from_plan"] == "fp32+none+adamw"
    assert out["oom_step_downs"] == len(out["step_downs"]) == 1 and planned["oom_step_downs"] == 0
    assert "micro-batch 256 → 128" in out["step_downs"][0]["changes"][0]  # the micro-batch goes first
    assert predict(cfg.shape(), Plan.parse(out["plan"]), "cpu", micro_batch=out["micro_batch"]).peak_bytes < fp32


class Regressor(torch.nn.Module):
    """A user's model over numeric columns, one input per column; identical blocks for checkpointing."""

    def __init__(self, hidden: int = 32, layers: int = 2):
        super().__init__()
        self.inp = torch.nn.Linear(3, hidden)
        self.blocks = torch.nn.ModuleList(torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.GELU())
                                          for _ in range(layers))
        self.out = torch.nn.Linear(hidden, 1)

    def forward(self, l_quantity, l_discount, l_tax):
        h = self.inp(torch.stack([l_quantity / 50, l_discount * 10, l_tax * 10], dim=1))
        for block in self.blocks:
            h = h + block(h)
        return self.out(h).squeeze(-1)

    def loss(self, batch):
        pred = self(batch["l_quantity"], batch["l_discount"], batch["l_tax"])
        return torch.nn.functional.mse_loss(pred, batch["price"] / 50_000)


def regressor(hidden: int = 32, layers: int = 2) -> Regressor:
    return Regressor(hidden, layers)


def _factory_yml(tmp_path, table, **extra) -> str:
    data = {**dict(table=str(table), batch_size=256, steps=4, lr=3e-3, device="cpu", precision="fp32",
                   model=dict(kind="factory", factory=f"{__name__}:regressor", args=dict(hidden=32, layers=2),
                              inputs=["l_quantity=float32[256]", "l_discount=float32[256]", "l_tax=float32[256]",
                                      "price=float32[256]"], columns={"price": "l_extendedprice"})), **extra}
    path = tmp_path / "factory.yml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_job_trains_a_factory_model_with_the_planners_micro_batch(rows_table, tmp_path, capsys):
    from pipeline_opt.app.cli import main
    from pipeline_opt.config import load
    from pipeline_opt.training.planner import Plan, predict

    conf = _factory_yml(tmp_path, rows_table)
    cfg = load(conf, TrainingConfig)
    whole = predict(cfg.workload(), Plan(), "cpu").peak_bytes
    half = predict(cfg.workload(), Plan(), "cpu", micro_batch=128).peak_bytes
    budget = (whole + half) / 2 / 2**30
    assert main(["memory-plan", "--config", conf, "--budget-gib", f"{budget:.6f}", "--device", "cpu", "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)["chosen"]
    assert planned["micro_batch"] == 128 and planned["accumulation"] == 2
    out = train(replace(cfg, budget_gib=budget))  # the fixed plan at the micro-batch the planner sized for it
    assert out["steps"] == 4 and out["micro_batch"] == 128 and out["plan"] == planned["plan"]
    assert not out["step_downs"]
    assert out["loss_end"] < out["loss_start"]


@pytest.mark.slow
def test_torchrun_runs_the_job_sharded_with_fsdp2(rows_table, tmp_path):
    import os
    import socket
    import subprocess
    import sys

    conf = _factory_yml(tmp_path, rows_table, sharding="fsdp2", steps=3)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                           str(port), "-m", "pipeline_opt.app.cli", "train", "--config", conf, "--json"],
                          capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    decoder, text, outs = json.JSONDecoder(), done.stdout, []
    while text.strip():
        obj, end = decoder.raw_decode(text.lstrip())
        outs.append(obj)
        text = text.lstrip()[end:]
    assert sorted(o["rank"] for o in outs) == [0, 1] and all(o["launcher"] == "torchrun" for o in outs)
    assert all(o["plan"] == "fp32+none+adamw+fsdp2" and o["steps"] == 3 and o["world_size"] == 2 for o in outs)
    assert outs[0]["losses"] == pytest.approx(outs[1]["losses"])  # the ranks report their mean loss
