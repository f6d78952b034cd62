"""Stable split and the rollout's advance / promote / rollback decisions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline_opt.monitor.ab import Rollout, RolloutError, apply_outcome, arm, bucket, compare, run_rollout
from pipeline_opt.monitor.settings import MonitorConfig
from pipeline_opt.monitor.versions import ConfigStore

UNITS = [f"lakehouse/table_{i}" for i in range(4000)]


def test_split_is_stable_monotone_and_close_to_the_percent():
    assert bucket("orders", "s") == bucket("orders", "s") != bucket("orders", "t")
    for percent in (10, 25, 50):
        share = np.mean([arm(u, percent, "exp") == "candidate" for u in UNITS])
        assert abs(share - percent / 100) < 0.03
    at10 = {u for u in UNITS if arm(u, 10, "exp") == "candidate"}
    at25 = {u for u in UNITS if arm(u, 25, "exp") == "candidate"}
    assert at10 < at25  # a unit never leaves the candidate as the rollout widens
    assert all(arm(u, 100, "exp") == "candidate" and arm(u, 0, "exp") == "baseline" for u in UNITS[:100])


def test_compare_bounds_the_ratio_on_the_worse_side():
    rng = np.random.default_rng(1)
    base = rng.lognormal(0, 0.3, 200)
    same = compare(base, base * 1.0, margin=0.05)
    assert same.not_worse and same.bound > 1.0  # the upper bound of a lower-is-better ratio
    worse = compare(base, base * 1.3, margin=0.05)
    assert not worse.not_worse and worse.ratio == pytest.approx(1.3)
    hit = compare(base, base * 0.7, higher_is_better=True)
    assert not hit.not_worse and hit.bound < hit.limit == 0.95
    with pytest.raises(RolloutError):
        compare([1.0], [1.0, 2.0])


def latency_of(speedup: float, noise: float = 0.2):
    """Per-unit latency: a fixed per-unit cost (so arms differ only by the candidate's effect) plus noise."""
    def measure(unit, side):
        rng = np.random.default_rng(int(bucket(f"{unit}/{side}", "noise") * 1e6))
        cost = 1.0 + bucket(unit, "cost") / 100
        return cost * (speedup if side == "candidate" else 1.0) * rng.lognormal(0, noise)
    return measure


def rounds(n: int = 400):
    return lambda r: [f"q{r}-{i}" for i in range(n)]


def test_better_candidate_advances_through_every_stage_and_is_promoted(tmp_path):
    rollout = run_rollout(Rollout("faster-compaction"), rounds(), latency_of(0.8))
    assert [d.action for d in rollout.decisions] == ["advance", "advance", "promote"]
    assert [d.percent for d in rollout.decisions] == [10, 25, 50] and rollout.percent == 100
    store = ConfigStore(tmp_path)
    store.put("compaction", {"target": "128MB"})
    cand = store.put("compaction", {"target": "256MB"}, activate=False)
    apply_outcome(rollout, store, "compaction", cand.version)
    assert store.head("compaction") == cand.version


def test_worse_candidate_is_rolled_back_at_the_first_stage(tmp_path):
    rollout = run_rollout(Rollout("slower"), rounds(), latency_of(1.25))
    assert [d.action for d in rollout.decisions] == ["rollback"]
    assert rollout.status == "rolled_back" and rollout.percent == 0
    assert "not shown to be not worse" in rollout.decisions[0].reason
    with pytest.raises(RolloutError, match="rolled_back"):
        rollout.evaluate([1.0] * 50, [1.0] * 50)
    store = ConfigStore(tmp_path)
    store.put("compaction", {"target": "128MB"})
    cand = store.put("compaction", {"target": "1GB"}, activate=False)
    apply_outcome(rollout, store, "compaction", cand.version)
    assert store.head("compaction") == 1 and "rolled back at 10 %" in store.log("compaction")[-1].reason


def test_stage_waits_for_enough_units_and_higher_is_better_metrics():
    rollout = Rollout("hit-rate", higher_is_better=True, config=MonitorConfig(ab_min_units=30))
    assert rollout.run_stage([f"t{i}" for i in range(100)], lambda u, s: 0.5).action == "wait"  # ~10 candidates
    assert rollout.status == "running" and rollout.percent == 10
    rng = np.random.default_rng(0)
    decision = rollout.evaluate(rng.normal(0.5, 0.05, 300), rng.normal(0.3, 0.05, 40))
    assert decision.action == "rollback" and decision.comparison.ratio < 0.7


def test_equal_candidate_within_margin_advances():
    rng = np.random.default_rng(3)
    decision = Rollout("same").evaluate(rng.normal(10, 1, 400), rng.normal(10, 1, 400))
    assert decision.action == "advance"


def test_rollout_of_compaction_settings_on_real_delta_tables(tmp_path, monkeypatch):
    """Units are real tables; each arm compacts its tables with its own setting; the metric is files per scan."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    # Units named relative to the test folder: the stable hash, and so the split into arms, is then the same on every
    # run, whatever folder pytest picks (an absolute path put too few tables on one arm in some folders).
    monkeypatch.chdir(tmp_path)

    def make_tables(prefix):
        paths = []
        for t in range(16):
            path = Path(f"{prefix}{t}")
            for i in range(6):
                write_deltalake(path, pa.table({"id": np.arange(i * 200, (i + 1) * 200)}), mode="append")
            paths.append(path)
        return paths

    def files_after(settings):
        def measure(path, side):
            target = settings[side]
            if target:
                DeltaTable(path).optimize.compact(target_size=target)
            return len(DeltaTable(path).file_uris())
        return measure

    config = MonitorConfig(rollout_steps=[50, 100], ab_min_units=4)
    good = Rollout("compact-64MB", config=config)
    good.run_stage(make_tables("a"), files_after({"baseline": None, "candidate": 64 * 2**20}))
    assert good.status == "promoted" and good.decisions[-1].comparison.candidate_mean == 1.0
    bad = Rollout("compact-1B", config=config)  # a target below every file's size rewrites nothing useful
    bad.run_stage(make_tables("b"), files_after({"baseline": 64 * 2**20, "candidate": 1}))
    assert bad.status == "rolled_back" and bad.decisions[-1].comparison.ratio > 1.5
