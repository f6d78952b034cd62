"""The benchmarks' CPU variants write their JSON (even for a failing plan), and the GPU run's script runs its stages
end to end in its CPU dry run."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_small_benchmark_writes_ratios_predictions_and_failures(tmp_path, monkeypatch):
    bench = _bench("training_memory")
    monkeypatch.setattr(bench, "SMALL_PLANS", ["fp32+none+adamw", "bf16+full+adamw", "bf16+full+nosuchopt"])
    monkeypatch.setattr(bench, "GOAL_FRACTIONS", {1.0: 1.0})  # picks an already measured plan
    out = tmp_path / "training_memory.json"
    assert bench.main(["--small", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["small"] and data["device"].startswith("cpu")
    by_plan = {p["plan"]: p for p in data["plans"]}
    assert by_plan["fp32+none+adamw"]["memory_x"] == 1.0
    assert by_plan["bf16+full+adamw"]["memory_x"] < 1.0
    steps = data["warm_steps"] + data["timed_steps"]
    assert all(abs(p["prediction_error"]) <= 0.10 and abs(p["exact_error"]) <= 0.10 for p in data["plans"])
    assert all(len(p["losses"]) == steps and p["reserved_gib"] is None for p in data["plans"])
    assert [f["plan"] for f in data["failed"]] == ["bf16+full+nosuchopt"]
    assert data["goals"][0]["chosen"] in by_plan


@pytest.mark.slow
def test_gpu_run_script_dry_run(tmp_path):
    """``benchmarks/gpu_run.sh --dry-run``: the three stages on the CPU, results copied to $OUT, the card named."""
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": str(ROOT / ".venv" / "bin" / "python")}
    done = subprocess.run(["bash", "benchmarks/gpu_run.sh", "--dry-run"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    memory = json.loads((tmp_path / "training_memory_dryrun.json").read_text())
    assert memory["mode"] == "dry-run" and memory["plans"] and memory["divergence"]["curves"]["fp32+none+adamw"]
    assert all(p["predicted_reserved_gib"] for p in memory["plans"])  # planned for CUDA: reserved predicted
    feed = json.loads((tmp_path / "training_loader_feed_dryrun.json").read_text())
    assert feed["fed"][0]["device_busy_share"] > 0 and feed["device"].startswith("cpu")
    models = json.loads((tmp_path / "training_models_dryrun.json").read_text())
    assert set(models["models"]) == {"resnet", "bert", "bert-moe"} and not models["failed"]
    assert (tmp_path / "training_gpu_card.txt").read_text().strip()
