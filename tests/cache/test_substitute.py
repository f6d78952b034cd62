"""Loaders that read a cached file first within a window: each epoch still reads each file once."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_opt.cache import policies
from pipeline_opt.cache.simulate import simulate
from pipeline_opt.cache.substitute import replay_substituting
from pipeline_opt.cache.workload import read_workload

TRACE = Path(__file__).resolve().parents[1] / "data" / "traces" / "loaders-shared.workload.jsonl"


@pytest.mark.parametrize("name", ["lru", "planned"])
def test_window_zero_is_the_fixed_order(name):
    w = read_workload(TRACE)
    capacity = int(w.working_set_bytes * 0.5)
    fixed = simulate(w, [name], [0.5], bound=False).results[0].byte_miss_ratio
    assert replay_substituting(policies.make(name, capacity), w, 0).byte_miss_ratio == pytest.approx(fixed)


def test_substitution_reads_every_file_once_per_epoch_and_helps_lru():
    w = read_workload(TRACE)
    capacity = int(w.working_set_bytes * 0.5)
    run = replay_substituting(policies.make("lru", capacity), w, 64)
    for seeded, delivered in run.orders.values():
        assert sorted(seeded) == sorted(delivered)
    assert any(seeded != delivered for seeded, delivered in run.orders.values())
    assert run.byte_miss_ratio < replay_substituting(policies.make("lru", capacity), w, 0).byte_miss_ratio
