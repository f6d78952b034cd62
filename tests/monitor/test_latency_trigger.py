"""The response-time trigger on real Spark and Delta over a simulated clock: a compaction target that leaves a
table's small files in place makes its representative read slower, as the job's own probe measures after each
commit, and the latency trigger rolls the target back.

Why the design, and its margin on a small, loaded machine: local Spark packs tiny files into few tasks, so one
costs a read only about a millisecond, and a few hundred of them barely show beside the fixed second or two of a
probe (a first version with 300 files a night measured 1.3-1.9x the baseline and failed one run in three). So the
effect is made large: the table's main partition is fed 1000 files of ~15 KB a night, its side partition 3.6 KB
files. The active target (1 MiB) merges both. The candidate (16 KiB) still merges the side partition's files, so
every run commits and is probed, but it is smaller than two main-partition files, so those are never merged: the
candidate's main partition gains 1000 files a run while the baseline's gains ~16, and its read (the table's
representative query, which opens every file) falls further behind with each run instead of hovering near the
threshold (measured in two runs: 2.8-3.6 s against 1.1-1.5 s, and 5.2-5.6 s against 2.1-2.8 s under heavier
load: about 2-2.7x, where 1.5x fires). The trigger needs the breach to last more than 3 minutes, so the test
runs rounds 2 minutes apart until it fires (at most eight); a round whose read happens not to breach only restarts
the breach, it cannot roll back a fast setting.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline_opt.app.jobs import run_job
from pipeline_opt.monitor.ab import bucket
from pipeline_opt.monitor.rollouts import Settings
from pipeline_opt.monitor.store import read_metrics

KEY = "compaction.target_file_size"
CANDIDATE, BASELINE = "t2", "t3"  # buckets 4 and 64 with the candidate's id as salt (see test_loop.py)
MAIN_READ = "SELECT * FROM {table} WHERE part = 0"
ROUND_S = 120.0
FILES = 1000  # main-partition files landed a night


def test_the_names_land_on_their_arms():
    assert bucket(CANDIDATE, f"{KEY}-v2") < 10 <= 50 <= bucket(BASELINE, f"{KEY}-v2")


def land(table: Path, night: int) -> None:
    """One night's appends: ``FILES`` files of 1024 rows in the main partition (one commit), six small ones beside."""
    from deltalake import write_deltalake

    rng = np.random.default_rng(night)
    n = FILES * 1024
    write_deltalake(
        str(table),
        pa.table({"part": np.zeros(n, np.int32), "id": np.arange(n) + night * 10**7, "x": rng.normal(size=n)}),
        partition_by=["part"],
        target_file_size=1,
        mode="append",
    )  # a file per 1024-row batch
    for i in range(6):
        write_deltalake(
            str(table),
            pa.table({"part": np.ones(200, np.int32), "id": np.arange(200) + i * 200, "x": rng.normal(size=200)}),
            partition_by=["part"],
            mode="append",
        )


def compact(spark, table: Path):
    return run_job("compact", {"path": str(table), "no_verify": "true"}, spark=spark, progress=lambda m: None)


def main_files(table: Path) -> int:
    from deltalake import DeltaTable

    actions = pa.table(DeltaTable(str(table)).get_add_actions(flatten=True))
    return sum(1 for p in actions.column("partition.part").to_pylist() if p == 0)


def test_a_target_that_leaves_small_files_is_rolled_back_by_the_latency_trigger(spark, monitored, clock, tmp_path):
    lakehouse, write_conf = monitored
    # many points per arm before a stage is judged: only the trigger can end this rollout
    write_conf(probe_queries={CANDIDATE: [MAIN_READ], BASELINE: [MAIN_READ]}, ab_min_units=50)
    settings = Settings(lakehouse / "_settings", clock=clock)
    settings.set("compaction.min_file_size", "16KiB", "ops", "the window floor of these tables")
    settings.set(KEY, "1MiB", "ops", "what the tables use today")
    tables = {name: tmp_path / name for name in (CANDIDATE, BASELINE)}
    night = 0
    for _ in range(2):  # the jobs' own probes before the rollout are the baseline the trigger compares with
        for table in tables.values():
            land(table, night)
            assert compact(spark, table).plan.target == 2**20
        night += 1
        clock.advance(ROUND_S)

    state = settings.start(KEY, "16KiB", "ops", "smaller files for the side partition")
    rounds = 0
    while settings.rollout(KEY).status == "running" and rounds < 8:
        for name, table in tables.items():
            land(table, night)
            result = compact(spark, table)
            assert result.files_added > 0  # every run commits, so every run is probed
            assert result.plan.target == (16 * 1024 if name == CANDIDATE else 2**20)
        night, rounds = night + 1, rounds + 1
        if settings.rollout(KEY).status == "running":
            clock.advance(ROUND_S)

    state = settings.rollout(KEY)
    assert state.status == "rolled_back", state.steps
    last = state.steps[-1]
    assert last.action == "rollback" and "trigger latency.query" in last.reason, last.reason
    assert "above 150% of baseline" in last.reason and "rolled back to version 1" in last.reason
    points = read_metrics(lakehouse / "_metrics")
    probes = sorted((p for p in points if p.name == "latency.query"), key=lambda p: p.ts)
    candidate = [p for p in probes if p.labels.get("arm") == "candidate"]
    assert {p.labels["table"] for p in candidate} == {CANDIDATE} and len(candidate) == rounds
    # the breach had to last more than 3 minutes: a single slow read rolls nothing back
    assert rounds >= 3 and last.at - candidate[0].ts > 180
    # the slowdown is the layout's, measured: the candidate's main partition kept every small file
    assert main_files(tables[CANDIDATE]) >= FILES * rounds > 10 * main_files(tables[BASELINE])
    reference = [p.value for p in probes if p.labels.get("arm") != "candidate"]
    assert statistics.median(p.value for p in candidate[-3:]) > 1.5 * statistics.median(reference)

    # the store is back on the previous version, the rollback is logged and recorded with its reason
    assert settings.store.head(KEY) == 1 and settings.value(KEY) == "1MiB"
    assert settings.store.log(KEY)[-1].reason.startswith(f"rollout {state.id}: rolled back")
    rollbacks = [p for p in points if p.name == "event.rollback"]
    assert len(rollbacks) == 1 and rollbacks[0].labels["setting"] == KEY
    assert "trigger latency.query" in rollbacks[0].labels["reason"]
    # the next run reads that version: the candidate's table merges its main partition again
    clock.advance(ROUND_S)
    land(tables[CANDIDATE], night)
    after = compact(spark, tables[CANDIDATE])
    assert after.plan.target == 2**20 and main_files(tables[CANDIDATE]) < FILES
    assert settings.rollout(KEY).status == "rolled_back"  # and the candidate does not come back by itself
