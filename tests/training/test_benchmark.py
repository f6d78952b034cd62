"""The benchmark's CPU variant writes its JSON (even for a failing plan)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("training_memory", ROOT / "benchmarks" / "training_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_small_benchmark_writes_ratios_predictions_and_failures(tmp_path, monkeypatch):
    bench = _bench()
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
    assert all(abs(p["prediction_error"]) <= 0.10 and len(p["losses"]) == steps for p in data["plans"])
    assert [f["plan"] for f in data["failed"]] == ["bf16+full+nosuchopt"]
    assert data["goals"][0]["chosen"] in by_plan

