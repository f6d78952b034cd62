"""The known future of Spark table caching: forecasts from the schedule and recurrence, and the kept tables."""
from __future__ import annotations

import json

import pytest

from pipeline_opt.app.cli import main
from pipeline_opt.cache.access_log import Access, read_lineage_csv
from pipeline_opt.cache.controller import TableUse, plan
from pipeline_opt.cache.forecast import HOUR_MS, ScheduledRead, forecast
from pipeline_opt.cache.knapsack import choose_by_forecast
from pipeline_opt.cache.settings import CacheConfig
from pipeline_opt.config import build
from pipeline_opt.errors import ConfigError


def _reads(table, hours, size, location=""):
    return [Access(int(h * HOUR_MS), table, location, size) for h in hours]


def test_recurrence_and_schedule():
    log = _reads("hourly", range(0, 24), 100) + _reads("daily", [0, 24, 48], 100) + _reads("once", [3], 100)
    f = forecast(log, horizon_hours=24, schedule=[ScheduledRead("nightly", 24.0)], now_ms=48 * HOUR_MS)
    assert f["daily"].basis == "recurrence" and f["daily"].reads == 1 and f["daily"].period_hours == 24
    assert f["hourly"].reads == 25  # overdue since hour 24: due now, then every hour up to the horizon
    assert f["once"].reads == 0 and f["once"].basis == "read once"
    assert f["nightly"].basis == "schedule" and f["nightly"].reads == 1


def test_keeps_what_saves_most_per_budget_byte():
    uses = [TableUse("hot", "", 100, 10), TableUse("warm", "", 300, 3), TableUse("big", "", 900, 2),
            TableUse("once", "", 50, 1)]
    f = forecast(_reads("hot", range(10), 100) + _reads("warm", [0, 4, 8], 300) + _reads("big", [0, 8], 900)
                 + _reads("once", [1], 50), horizon_hours=24, now_ms=9 * HOUR_MS)
    saved = choose_by_forecast(uses, f, budget=500, cached_now=set())
    kept = {u.table: u for u in uses if u.keep}
    assert set(kept) == {"hot", "warm"} and saved == sum(u.saved_bytes for u in kept.values())
    by = {u.table: u for u in uses}
    assert by["hot"].saved_bytes == (by["hot"].predicted_reads - 1) * 100  # one read fills the cache
    assert "saves nothing" in by["once"].reason and "does not fit" in by["big"].reason


def test_the_best_single_table_wins_over_a_poor_greedy_fill():
    uses = [TableUse("small", "", 10, 0), TableUse("large", "", 1000, 0)]
    f = forecast([], 24, [ScheduledRead("small", 1.0), ScheduledRead("large", 2.0)])
    choose_by_forecast(uses, f, budget=1000, cached_now={"small", "large"})
    assert [u.table for u in uses if u.keep] == ["large"]  # 12 reads x 1000 B beat 24 reads x 10 B


def test_pins_and_exclusions_and_the_budget():
    uses = [TableUse("main.a.pinned", "", 400, 0), TableUse("b", "", 100, 0), TableUse("c", "", 100, 0)]
    f = forecast([], 24, [ScheduledRead(u.table, 1.0) for u in uses])
    choose_by_forecast(uses, f, budget=500, cached_now=set(), pins=["pinned"], exclusions=["c"])
    assert [u.table for u in uses if u.keep] == ["main.a.pinned", "b"]
    assert "excluded" in uses[2].reason and sum(u.bytes for u in uses if u.keep) <= 500


def test_plan_on_a_lineage_export_reports_savings(tmp_path, capsys):
    csv = tmp_path / "lineage.csv"
    rows = ["event_time,source_table_full_name,source_path,target_table_full_name,size_bytes"]
    rows += [f"2026-01-0{1 + d}T0{h}:00:00Z,main.sales.orders,,main.gold.daily,5000" for d in range(3) for h in (1, 5)]
    rows += ["2026-01-01T02:00:00Z,main.sales.returns,,main.gold.daily,8000"]
    csv.write_text("\n".join(rows) + "\n")
    p = plan(read_lineage_csv(csv), 6000, "planned", databricks=False, horizon_hours=48)
    orders = next(u for u in p.tables if u.table == "main.sales.orders")
    returns = next(u for u in p.tables if u.table == "main.sales.returns")
    assert orders.keep and orders.saved_bytes > 0 and not returns.keep and p.saved_bytes == orders.saved_bytes
    assert p.kept_bytes <= 6000 and [a.statement for a in p.actions if a.kind == "cache_table"] == \
        ["CACHE TABLE `main`.`sales`.`orders`"]
    assert main(["cache", "plan", "--log", str(csv), "--budget", "6000", "--horizon", "48", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["policy"] == "planned" and out["saved_bytes"] == p.saved_bytes and out["dry_run"]


def test_schedule_in_the_config_is_checked():
    cfg = build(CacheConfig, {"schedule": [{"table": "t", "every_hours": 6}], "pins": ["t"]})
    assert cfg.schedule[0].every_hours == 6.0
    with pytest.raises(ConfigError, match="every_hours"):
        build(CacheConfig, {"schedule": [{"table": "t", "every_hours": 0}]})
    with pytest.raises(ConfigError, match="pins and exclusions both name"):
        build(CacheConfig, {"pins": ["t"], "exclusions": ["t"]})
