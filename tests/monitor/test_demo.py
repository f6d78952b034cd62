"""The monitor demo on a small lakehouse: real reads, a rollout, a rollback drill, the report."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from pipeline_opt.monitor.demo import run
from pipeline_opt.monitor.versions import ConfigStore


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


def test_demo_writes_the_report_and_shows_rollout_and_rollback(tmp_path):
    lake = small_lakehouse(tmp_path / "lake")
    facts = run(lake, tmp_path / "out", results_dir=tmp_path / "no-results")
    assert facts["report"] == str(tmp_path / "out" / "report" / "index.html")
    page = (tmp_path / "out" / "report" / "index.html").read_text()
    assert "rollback of compaction (drill)" in page and "compaction: revert → v1" in page
    assert "table_sizes_lineitem.png" in page and "read_latency.png" in page and facts["plots"] >= 5
    assert set(facts["query_p50_s"]) == {"latency.query[lineitem]", "latency.query[orders]"}
    assert facts["rollback_drill"]["fired"] and facts["rollback_drill"]["reverted_to"] == {"min_file_size": "16MB"}
    decisions = facts["rollout"]["decisions"]
    assert decisions[-1].endswith(("promote", "rollback")) and decisions[0].startswith("10 %")
    store = ConfigStore(tmp_path / "out" / "_configs")
    expected = {"policy": "s3fifo"} if decisions[-1].endswith("promote") else {"policy": "lru"}
    assert store.get("cache").config == expected == facts["rollout"]["active_config"]
    assert facts["missing_results"] == ["compaction", "loader", "training_memory", "cache"]


def test_demo_plots_tables_other_showcases_compacted(tmp_path):
    from pipeline_opt.monitor.demo import compacted_by_other_showcases

    lake = small_lakehouse(tmp_path / "lake")
    outputs = tmp_path / "lake-output"
    (outputs / "monitor").mkdir(parents=True)
    copy = outputs / "tables" / "lineitem_copy"
    write_deltalake(copy, DeltaTable(lake / "orders").to_pyarrow_table())
    assert compacted_by_other_showcases(outputs / "monitor") == []  # not compacted yet
    write_deltalake(copy, DeltaTable(lake / "orders").to_pyarrow_table(), mode="append")
    DeltaTable(copy).optimize.compact()
    assert compacted_by_other_showcases(outputs / "monitor") == [copy]
