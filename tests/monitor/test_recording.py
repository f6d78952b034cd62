"""Every job records its facts into the metrics table by itself; a bad metrics location is refused, a failing one
never fails the job."""
from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from pipeline_opt.app import monitoring
from pipeline_opt.app.cli import main
from pipeline_opt.app.jobs import run_job
from pipeline_opt.monitor.store import MetricsTableError, read_metrics

from .conftest import small_files_table


def test_a_job_records_its_facts_with_table_job_run_and_settings(monitored, tmp_path):
    lakehouse, _ = monitored
    table = small_files_table(tmp_path / "events")
    result = run_job("health", {"path": str(table)})
    points = read_metrics(lakehouse / "_metrics")
    by_name = {p.name: p for p in points}
    assert by_name["fact.stats.files"].value == result.stats.files == 6
    assert by_name["fact.version"].value == 5
    assert {"job.wall_s", "host.rss_bytes"} <= set(by_name)
    run_ids = {p.run_id for p in points}
    assert len(run_ids) == 1 and all(p.job == "health" for p in points)
    fact = by_name["fact.stats.files"]
    assert fact.labels["table"] == "events" and fact.labels["arm"] == ""
    assert fact.labels["version"] == "compaction.max_file_size@default,compaction.min_file_size@default"

    run_job("health", {"path": str(table)})  # a second run appends, under its own run id
    again = read_metrics(lakehouse / "_metrics")
    assert len({p.run_id for p in again}) == 2 and len(again) == 2 * len(points)


def test_the_store_sets_what_the_caller_did_not_give(monitored, tmp_path):
    from pipeline_opt.monitor.rollouts import Settings

    lakehouse, _ = monitored
    table = small_files_table(tmp_path / "events")
    settings = Settings(lakehouse / "_settings")
    version = settings.set("compaction.min_file_size", "1KiB", "ops", "tiny test files")
    stored = run_job("health", {"path": str(table)})
    assert stored.min_size == 1024
    given = run_job("health", {"path": str(table), "min_file_size": "2KiB"})
    assert given.min_size == 2048  # an explicit parameter wins over the store
    labels = {p.labels["version"] for p in read_metrics(lakehouse / "_metrics") if p.name == "fact.min_size"}
    assert labels == {f"compaction.max_file_size@default,compaction.min_file_size@v{version}",
                      "compaction.max_file_size@default,compaction.min_file_size@given"}


def test_a_metrics_location_that_is_not_a_metrics_table_is_refused_in_one_line(monitored, tmp_path, capsys):
    lakehouse, _ = monitored
    table = small_files_table(tmp_path / "events", files=1)
    write_deltalake(str(lakehouse / "_metrics"), pa.table({"order_id": [1, 2]}))  # someone else's table
    with pytest.raises(MetricsTableError, match="order_id"):
        run_job("health", {"path": str(table)})
    assert main(["health", str(table)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a metrics table" in err[0]

    (lakehouse / "_metrics").rename(lakehouse / "elsewhere")
    (lakehouse / "_metrics").mkdir()
    (lakehouse / "_metrics" / "notes.txt").write_text("not delta")
    with pytest.raises(MetricsTableError, match="not a Delta table"):
        run_job("health", {"path": str(table)})


def test_a_process_keeps_its_metrics_table_open_but_never_trusts_a_replaced_one(monitored, tmp_path):
    import shutil

    from pipeline_opt.monitor import store
    from pipeline_opt.monitor.metrics import MetricPoint

    lakehouse, _ = monitored
    metrics = lakehouse / "_metrics"
    table = small_files_table(tmp_path / "events", files=1)
    run_job("health", {"path": str(table)})
    kept = store._KEPT[(str(metrics), ())]
    # another process appends meanwhile: the next run's table is the kept one, brought up to date
    store.DeltaSink(str(metrics)).write([MetricPoint(1.0, "fact.other", "gauge", 1.0, "", "other", "elsewhere")])
    store._KEPT[(str(metrics), ())] = kept
    assert store.check_metrics_location(metrics) is kept and kept.version() == 1
    store._KEPT[(str(metrics), ())] = kept
    run_job("health", {"path": str(table)})
    assert {p.run_id for p in read_metrics(metrics)} >= {"elsewhere"} and kept.version() == 2
    # the folder is replaced by someone else's table with a shorter log: refused, as on a fresh open
    shutil.rmtree(metrics)
    write_deltalake(str(metrics), pa.table({"order_id": [1, 2]}))
    with pytest.raises(MetricsTableError, match="order_id"):
        run_job("health", {"path": str(table)})


def test_a_failing_metrics_table_is_reported_once_and_the_job_goes_on(monitored, tmp_path):
    lakehouse, _ = monitored
    table = small_files_table(tmp_path / "events", files=2)
    # a table with the metrics columns but labels of another type: every append of points fails
    from pipeline_opt.monitor.store import SCHEMA

    wrong = pa.schema([pa.field(f.name, pa.int64() if f.name == "labels" else f.type) for f in SCHEMA])
    write_deltalake(str(lakehouse / "_metrics"), wrong.empty_table())
    lines: list[str] = []
    result = run_job("health", {"path": str(table)}, progress=lines.append)
    assert result.stats.files == 2
    assert len(lines) == 1 and lines[0].startswith("monitoring: metrics table") and "result stands" in lines[0]
    assert read_metrics(lakehouse / "_metrics") == []


def test_monitoring_is_off_without_a_lakehouse_or_when_switched_off(tmp_path, monkeypatch):
    conf = tmp_path / "monitor.yml"
    conf.write_text(f"metrics_table: {tmp_path / 'no-lakehouse' / '_metrics'}\n")
    monkeypatch.setenv(monitoring.ENV, str(conf))
    assert monitoring.monitor_config() is None
    monkeypatch.setenv(monitoring.ENV, "off")
    assert monitoring.monitor_config() is None
    conf.write_text(f"metrics_table: {tmp_path / '_metrics'}\nrecord: false\n")
    monkeypatch.setenv(monitoring.ENV, str(conf))
    assert monitoring.monitor_config() is None


def test_a_failed_run_is_recorded_and_its_error_still_reaches_the_caller(monitored, tmp_path):
    lakehouse, _ = monitored
    table = small_files_table(tmp_path / "broken", files=2)
    (table / "_delta_log" / "00000000000000000001.json").write_text("{not json\n")
    with pytest.raises(Exception) as failure:
        run_job("health", {"path": str(table)})
    failed = [p for p in read_metrics(lakehouse / "_metrics") if p.name == "event.job_failed"]
    assert len(failed) == 1 and failed[0].labels["error"] == type(failure.value).__name__
    assert failed[0].labels["table"] == "broken" and failed[0].job == "health"


def test_a_run_over_several_tables_puts_each_table_on_its_own_arm(monitored, tmp_path):
    import yaml

    from pipeline_opt.monitor.ab import bucket
    from pipeline_opt.monitor.rollouts import Settings

    lakehouse, _ = monitored
    salt = "compaction.min_file_size-v2"  # the candidate's rollout id salts the split
    names = [f"t{i}" for i in range(100)]
    on = [n for n in names if bucket(n, salt) < 10][:2]
    off = [n for n in names if bucket(n, salt) >= 10][:2]
    for n in on + off:
        small_files_table(tmp_path / n, files=2)
    conf = tmp_path / "tables.yml"
    conf.write_text(yaml.safe_dump({"tables": [{"name": n, "path": str(tmp_path / n)} for n in on + off]}))
    settings = Settings(lakehouse / "_settings")
    settings.set("compaction.min_file_size", "1KiB", "ops", "today's floor")
    settings.start("compaction.min_file_size", "2KiB", "ops", "a higher floor")
    results = run_job("health", {"config": str(conf)}, progress=lambda m: None)
    assert {name: r.min_size for name, r in results} == {**{n: 2048 for n in on}, **{n: 1024 for n in off}}
    points = read_metrics(lakehouse / "_metrics")
    recorded = {p.labels["table"]: (p.labels["arm"], p.labels["version"].split(",")[1])
                for p in points if p.name == "fact.min_size"}
    assert recorded == {**{n: ("candidate", "compaction.min_file_size@v2") for n in on},
                        **{n: ("baseline", "compaction.min_file_size@v1") for n in off}}
    wall = next(p for p in points if p.name == "job.wall_s")
    assert wall.labels["arm"] == "" and "rollout.compaction.min_file_size" not in wall.labels  # the run mixes arms
