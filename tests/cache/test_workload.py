"""Product workload traces: the generator, the file format, the shipped traces, recorded runs."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipeline_opt.app.cli import main
from pipeline_opt.cache.generate import LoaderSpec, ScanSpec, TableSpec, WorkloadSpec, generate
from pipeline_opt.cache.presets import PRESETS, preset
from pipeline_opt.cache.simulate import simulate
from pipeline_opt.cache.trace import TraceError
from pipeline_opt.cache.workload import read_record, read_workload, write_workload
from pipeline_opt.config import build
from pipeline_opt.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "traces"
SHIPPED_SCALE = 0.25


def _spec(**kw):
    base = dict(name="t", tables=[TableSpec("a", 50, 1000, 0.3), TableSpec("b", 20, 5000, 0.0)],
                loaders=[LoaderSpec("a", seed=1, epochs=3)], scans=[ScanSpec("b", every=40)])
    return WorkloadSpec(**{**base, **kw})


def test_loaders_read_every_file_once_per_epoch_and_announce_it():
    w = generate(_spec())
    reads = Counter(w.keys[w.sources == 0].tolist())
    assert set(reads) == set(range(50)) and set(reads.values()) == {3}
    plans = [a for a in w.announcements if w.source_names[a.source].startswith("loader")]
    assert len(plans) == 3 and len(plans[0].keys) == 100 and len(plans[-1].keys) == 50  # this epoch + next
    epoch0 = w.keys[w.sources == 0][:50].tolist()
    assert plans[0].keys[:50] == epoch0


def test_scans_run_on_schedule_and_are_announced_a_period_ahead():
    w = generate(_spec())
    scans = [n for n in w.source_names if n.startswith("scan:b")]
    assert len(scans) >= 2
    first = next(a for a in w.announcements if w.source_names[a.source] == "scan:b#0")
    assert first.at == 0 and first.start_after == 40
    started = int(np.flatnonzero(w.sources == w.source_names.index("scan:b#0"))[0])
    assert started == 40


def test_a_one_off_unannounced_scan_and_adhoc_share():
    w = generate(_spec(scans=[ScanSpec("b", every=30, runs=1, announce=False)], adhoc_share=0.2,
                       adhoc_tables=["a"]))
    scan = w.source_names.index("scan:b#0")
    assert (w.sources == scan).sum() == 20
    assert not any(a.source == scan for a in w.announcements)
    assert 0.1 < (w.sources == -1).mean() < 0.3


def test_generation_is_deterministic_and_the_format_round_trips(tmp_path):
    w = generate(_spec())
    assert np.array_equal(w.keys, generate(_spec()).keys)
    back = read_workload(write_workload(w, tmp_path / "w.jsonl"))
    assert np.array_equal(back.keys, w.keys) and np.array_equal(back.sizes, w.sizes)
    assert np.array_equal(back.sources, w.sources) and back.table_names == w.table_names
    assert [(a.at, a.source, a.keys, a.start_after) for a in back.announcements] == \
        [(a.at, a.source, a.keys, a.start_after) for a in w.announcements]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_shipped_traces_are_the_presets(name):
    shipped = read_workload(SHIPPED / f"{name}.workload.jsonl")
    fresh = generate(preset(name, SHIPPED_SCALE))
    assert np.array_equal(shipped.keys, fresh.keys) and np.array_equal(shipped.sizes, fresh.sizes)
    assert len(shipped.announcements) == len(fresh.announcements)


@pytest.mark.parametrize("name", ["loader-epochs", "loaders-shared", "training-maintenance"])
def test_plans_reach_near_the_bound_on_shipped_traces(name):
    w = read_workload(SHIPPED / f"{name}.workload.jsonl")
    r = simulate(w, ["lru", "planned"], [0.5])
    miss = {x.policy: x.byte_miss_ratio for x in r.results}
    assert miss["planned"] <= 1.1 * r.bound[0].byte_miss_ratio and miss["planned"] < miss["lru"]


def test_wrong_plans_stay_no_worse_than_s3fifo():
    w = read_workload(SHIPPED / "wrong-plans.workload.jsonl")
    r = simulate(w, ["s3fifo", "planned"], [0.25, 0.5, 0.75], bound=False)
    for f in (0.25, 0.5, 0.75):
        miss = {x.policy: x.byte_miss_ratio for x in r.results if x.size_fraction == f}
        assert miss["planned"] <= 1.02 * miss["s3fifo"]


@pytest.mark.parametrize("text, where", [
    ('{"format": "x"}\n', "line 1"),
    ('{"format": "pipeline-opt-workload", "version": 1, "tables": ["a"], "sources": []}\n{"files": [[0, 0, ""]]}\n',
     "size <= 0"),
    ('{"format": "pipeline-opt-workload", "version": 1, "tables": ["a"], "sources": []}\n{"files": [[0, 5, ""]]}\n'
     '{"read": -1, "keys": [3]}\n', "line 3"),
    ('{"format": "pipeline-opt-workload", "version": 1, "tables": ["a"], "sources": []}\n{"files": [[0, 5, ""]]}\n'
     '{"announce": 4, "keys": [0]}\n', "unknown source"),
    ('{"format": "pipeline-opt-workload", "version": 1, "tables": ["a"], "sources": []}\n{"files": [[0, 5, ""]]}\n'
     '{"read": -1, "keys": [0]\n', "line 3 is not JSON"),
])
def test_corrupt_workloads_are_named(tmp_path, text, where):
    p = tmp_path / "bad.jsonl"
    p.write_text(text)
    with pytest.raises(TraceError, match=where):
        read_workload(p)


def test_a_recorded_run_becomes_a_workload(tmp_path):
    a, b = "a" * 40, "b" * 40
    ops = [["a", "loader", [a, b, "c" * 40], 0], ["r", a, 100, "lake/t"], ["r", b, 200, "lake/t"],
           ["r", a, 100, "lake/t"], ["w", "loader"]]
    p = tmp_path / "rec.jsonl"
    p.write_text("\n".join(json.dumps(op) for op in ops) + "\n")
    w = read_record(p)
    assert w.keys.tolist() == [0, 1, 0] and w.sizes.tolist() == [100, 200, 100] and w.table_names == ["lake/t"]
    assert [(x.at, x.keys) for x in w.announcements] == [(0, [0, 1]), (3, [])]
    p.write_text('["r", "x", -5, null]\n')
    with pytest.raises(TraceError, match="line 1"):
        read_record(p)


def test_specs_load_from_config_and_are_checked():
    spec = build(WorkloadSpec, {"name": "y", "tables": [{"name": "a", "files": 10, "median_bytes": 1000}],
                                "loaders": [{"table": "a", "epochs": 2}], "scans": [{"table": "a", "every": 5}]})
    assert len(generate(spec)) >= 20
    with pytest.raises(ConfigError, match="unknown table 'zz'"):
        build(WorkloadSpec, {"name": "y", "tables": [{"name": "a", "files": 3}], "loaders": [{"table": "zz"}]})


def test_cli_generates_and_simulates_a_workload(tmp_path, capsys):
    out = tmp_path / "w.jsonl"
    assert main(["cache", "workload", "--preset", "loader-epochs", "--scale", "0.1", "--out", str(out), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["requests"] == len(read_workload(out))
    assert main(["cache", "simulate", "--trace", str(out), "--format", "workload", "--policies", "lru,planned",
                 "--sizes", "0.5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    miss = {r["policy"]: r["byte_miss_ratio"] for r in report["results"]}
    assert miss["planned"] < miss["lru"]
