"""The controller on event logs written by the real local Spark session, and on a lineage export."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pipeline_opt.app.cli import main
from pipeline_opt.cache.access_log import AccessLogError, read_access_logs, read_lineage_csv
from pipeline_opt.cache.controller import CachePlanError, apply_plan, cached_tables, plan, sql_name, summarize


def _event_dir(spark) -> Path:
    return Path(spark.conf.get("spark.eventLog.dir").replace("file://", "").replace("file:", ""))


@pytest.fixture(scope="module")
def tables(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("cache-tables")
    big, small = str(root / "facts"), str(root / "dim")
    spark.range(20000).selectExpr("id", "id % 50 AS k", "repeat('x', 20) AS pad").write.format("delta").save(big)
    spark.range(50).selectExpr("id AS k", "'v' AS v").write.format("delta").save(small)
    for _ in range(3):
        spark.sql(f"SELECT count(*) FROM delta.`{small}` WHERE k < 10").collect()
    spark.sql(f"SELECT count(*) FROM delta.`{big}` f JOIN delta.`{small}` d ON f.k = d.k").collect()
    spark.sql(f"SELECT sum(k) FROM delta.`{small}` WHERE v = 'v'").collect()
    deadline = time.time() + 20
    while time.time() < deadline:  # the listener writes asynchronously
        accesses = read_access_logs([_event_dir(spark)])
        if sum(a.location.endswith("dim") for a in accesses) >= 5:
            break
        time.sleep(0.5)
    return {"facts": big, "dim": small, "accesses": accesses}


def test_event_log_scans_become_accesses(tables):
    accesses = tables["accesses"]
    dim = [a for a in accesses if a.location.endswith("dim")]
    facts = [a for a in accesses if a.location.endswith("facts")]
    assert len(dim) >= 5 and len(facts) >= 1
    assert all(a.bytes > 0 for a in dim + facts)
    assert not any("_delta_log" in a.location for a in accesses)
    assert [a.time_ms for a in accesses] == sorted(a.time_ms for a in accesses)


def test_plan_keeps_hot_small_table_within_budget(tables):
    uses = {u.location.rsplit("/", 1)[-1]: u for u in summarize(tables["accesses"])}
    budget = uses["dim"].bytes + 2048
    assert uses["facts"].bytes > budget
    p = plan(tables["accesses"], budget, policy="lru", cached_now=set(), databricks=False)
    kept = {u.location.rsplit("/", 1)[-1] for u in p.tables if u.keep}
    assert "dim" in kept and "facts" not in kept
    assert p.kept_bytes <= budget and p.dry_run
    assert p.loader_keep and all("dim" in f for f in p.loader_keep)
    kinds = {(a.kind, a.supported) for a in p.actions}
    assert ("cache_table", True) in kinds and ("disk_cache_warm", False) in kinds


@pytest.mark.parametrize("policy", ["lru", "s3fifo", "learned"])
def test_plan_never_exceeds_budget(tables, policy):
    for budget in (1000, 10_000, 100_000, 10_000_000):
        p = plan(tables["accesses"], budget, policy=policy, databricks=False)
        assert p.kept_bytes <= budget


def test_config_switches_action_kinds(tables):
    only_tables = plan(tables["accesses"], 10**9, "lru", databricks=True, disk_cache=False)
    assert {a.kind for a in only_tables.actions} == {"cache_table"}
    only_disk = plan(tables["accesses"], 10**9, "lru", databricks=True, spark_table_cache=False)
    assert {(a.kind, a.supported) for a in only_disk.actions} == {("disk_cache_warm", True)}


def test_apply_is_idempotent(spark, tables, tmp_path):
    state = tmp_path / "state.json"
    budget = summarize(tables["accesses"])[0].bytes * 10
    p = plan(tables["accesses"], budget, "lru", cached_tables(summarize(tables["accesses"]), spark, state), False)
    apply_plan(p, spark, state)
    ran = [a.statement for a in p.actions if a.applied]
    assert ran and all(s.startswith("CACHE TABLE") for s in ran)
    dim = next(u for u in p.tables if u.location.endswith("dim"))
    assert spark.catalog.isCached(f"delta.`{dim.location.replace('file:', '')}`")
    again = plan(tables["accesses"], budget, "lru", cached_tables(summarize(tables["accesses"]), spark, state), False)
    assert again.actions == []
    assert json.loads(state.read_text())["cached"]
    spark.sql(f"UNCACHE TABLE IF EXISTS delta.`{dim.location.replace('file:', '')}`")


def test_cli_plan_is_a_dry_run(tables, spark, capsys):
    assert main(["cache", "plan", "--log", str(_event_dir(spark)), "--budget", "1MiB", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] is True and out["kept_bytes"] <= 2**20
    assert not any(a["applied"] for a in out["actions"])


def test_lineage_export(tmp_path, tables):
    csv = tmp_path / "lineage.csv"
    csv.write_text("event_time,source_table_full_name,source_path,target_table_full_name,size_bytes\n"
                   "2026-01-01T00:00:00Z,main.sales.orders,,main.gold.daily,5000\n"
                   "2026-01-01T00:01:00Z,main.sales.orders,,main.gold.daily,5000\n"
                   "2026-01-01T00:02:00Z,,,main.gold.daily,\n"
                   f"2026-01-01T00:03:00Z,,{tables['dim']},main.gold.x,\n")
    accesses = read_lineage_csv(csv)
    assert [a.table for a in accesses] == ["main.sales.orders", "main.sales.orders", tables["dim"]]
    assert accesses[2].bytes > 0  # sized from the table's Delta log
    p = plan(accesses, 4000, "lru", databricks=False)
    assert p.kept_bytes <= 4000 and not next(u for u in p.tables if u.table == "main.sales.orders").keep


def test_bad_inputs_are_named(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(AccessLogError, match="x.csv"):
        read_lineage_csv(bad)
    log = tmp_path / "events"
    log.write_text('{"Event":"org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart", broken\n')
    with pytest.raises(AccessLogError, match="line 1"):
        read_access_logs([log])
    with pytest.raises(CachePlanError, match="budget"):
        plan([], 0)
    with pytest.raises(CachePlanError):
        sql_name("evil`name", "/tmp/a`b")
    assert sql_name("main.sales.orders") == "`main`.`sales`.`orders`"
