"""The demo's showcases on small lakehouse-shaped folders: what each reports is what it did."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

import pipeline_opt.app.jobs  # noqa: F401  (registers the jobs the monitor showcase runs, as the CLI does)
from pipeline_opt.app.demo import cache, loader, monitor, training
from pipeline_opt.app.demo.inputs import DemoInputs
from pipeline_opt.delta import read_snapshot
from pipeline_opt.monitor.versions import ConfigStore
from tests.training.conftest import write_rows_table


def inputs(lake: Path, out: Path, results: Path = Path("no-results")) -> DemoInputs:
    return DemoInputs(lake, out, out.parent, None, results)


def small_lakehouse(root):
    rng = np.random.default_rng(0)
    for i in range(25):
        n = 400 + i
        write_deltalake(root / "lineitem", pa.table({
            "l_quantity": rng.integers(1, 50, n).astype(float), "l_extendedprice": rng.random(n) * 1e4,
            "l_discount": rng.random(n) / 10, "l_comment": [f"c{j}" * (j % 30) for j in range(n)]}), mode="append")
    DeltaTable(root / "lineitem").optimize.compact()
    for i in range(5):
        write_deltalake(root / "orders", pa.table({"o_totalprice": rng.random(100)}), mode="append")
    return root


def test_monitor_writes_the_report_and_shows_rollout_and_rollback(tmp_path):
    lake = small_lakehouse(tmp_path / "lake")
    facts = monitor.run(inputs(lake, tmp_path / "out", tmp_path / "no-results"))
    assert facts["report"] == str(tmp_path / "out" / "report" / "index.html")
    page = (tmp_path / "out" / "report" / "index.html").read_text()
    assert "rollback of compaction (drill)" in page and "compaction: revert → v1" in page
    assert "table_sizes_0.png" in page and "table_sizes_1.png" in page  # lineitem and orders: one plot each
    assert "read_latency.png" in page and facts["plots"] >= 5
    assert set(facts["query_p50_s"]) == {"latency.query[lineitem]", "latency.query[orders]"}
    assert facts["rollback_drill"]["fired"] and facts["rollback_drill"]["reverted_to"] == {"min_file_size": "16MB"}
    decisions = facts["rollout"]["decisions"]
    assert decisions[-1].endswith(("promote", "rollback")) and decisions[0].startswith("10 %")
    store = ConfigStore(tmp_path / "out" / "_configs")
    expected = {"policy": "s3fifo"} if decisions[-1].endswith("promote") else {"policy": "lru"}
    assert store.get("cache").config == expected == facts["rollout"]["active_config"]
    assert facts["missing_results"] == ["compaction", "loader", "training_memory", "cache"]


def test_monitor_plots_tables_other_showcases_compacted(tmp_path):
    from pipeline_opt.app.demo.monitor import compacted_by_other_showcases

    lake = small_lakehouse(tmp_path / "lake")
    outputs = tmp_path / "lake-output"
    (outputs / "monitor").mkdir(parents=True)
    copy = outputs / "tables" / "lineitem_copy"
    write_deltalake(copy, DeltaTable(lake / "orders").to_pyarrow_table())
    assert compacted_by_other_showcases(outputs / "monitor") == []  # not compacted yet
    write_deltalake(copy, DeltaTable(lake / "orders").to_pyarrow_table(), mode="append")
    DeltaTable(copy).optimize.compact()
    assert compacted_by_other_showcases(outputs / "monitor") == [copy]


def test_loader_reads_the_live_rows_of_lineitem(spark, tmp_path):
    cols = [f"cast(id * {i + 1} as bigint) as {c}" if i < 4 else f"cast(id / 100 as decimal(15,2)) as {c}"
            for i, c in enumerate(loader.NUMERIC)]
    lineitem = str(tmp_path / "lh" / "lineitem")
    spark.range(0, 5000, numPartitions=3).selectExpr(*cols).write.format("delta").save(lineitem)
    spark.sql(f"DELETE FROM delta.`{lineitem}` WHERE l_orderkey % 10 = 0")
    facts = loader.run(inputs(tmp_path / "lh", tmp_path / "out"))
    assert facts["rows"] == facts["live_rows"] == 4500
    assert facts["batches"] == 1 and facts["state_dict_bytes"] < 1000
    assert json.loads((tmp_path / "out" / "loader_demo.json").read_text())["rows"] == 4500


def test_cache_replays_the_lakehouse_workload(tmp_path):
    lake = small_lakehouse(tmp_path / "lake")
    trace = cache.workload(inputs(lake, tmp_path / "out"), epochs=2)
    lineitem, orders = read_snapshot(str(lake / "lineitem")), read_snapshot(str(lake / "orders"))
    files = len(lineitem.paths) + len(orders.paths)
    assert len(trace) == 2 * files and set(trace.keys.tolist()) == set(range(files))
    assert trace.working_set_bytes == lineitem.table_bytes + orders.table_bytes
    facts = cache.run(inputs(lake, tmp_path / "out"))
    assert facts["requests"] == cache.EPOCHS * files
    for policy in cache.POLICIES:
        assert facts["offline_bound_byte_miss_ratio"] <= facts[f"{policy}_byte_miss_ratio"] <= 1.0


def test_training_trains_under_the_budget(tmp_path):
    lake = tmp_path / "lake"
    write_rows_table(lake / "lineitem", rows=8192, files=2)
    facts = training.run(inputs(lake, tmp_path / "out"), steps=12)
    assert facts["steps"] == 12 and facts["loss_end"] < facts["loss_start"]
    assert facts["plan"] and facts["steps_per_s"] > 0 and Path(facts["checkpoint"]).exists()
