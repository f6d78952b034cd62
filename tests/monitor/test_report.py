"""The report renders from real results: a real compacted Delta table, real metrics, a real cache simulation."""
from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from pipeline_opt.app.cli import main
from pipeline_opt.monitor import extract
from pipeline_opt.monitor.metrics import Recorder
from pipeline_opt.monitor.report import build_report
from pipeline_opt.monitor.results import load_results
from pipeline_opt.monitor.store import DeltaSink

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def compacted_table(tmp_path_factory):
    """30 small appends, then a real compaction (delta-rs optimize)."""
    path = tmp_path_factory.mktemp("lake") / "events"
    rng = np.random.default_rng(0)
    for i in range(30):
        write_deltalake(path, pa.table({"id": np.arange(i * 2000, (i + 1) * 2000), "x": rng.random(2000)}),
                        mode="append")
    DeltaTable(path).optimize.compact()
    return path


def record_reads(table, metrics) -> None:
    """Times real reads of the table at the version before compaction and at the latest one."""
    with Recorder(job="report-test", sinks=[DeltaSink(metrics)]) as rec:
        for phase, version in (("before", 29), ("after", None)):
            for _ in range(3):
                with rec.timed("query", query="scan", phase=phase) as span:
                    span.rows = DeltaTable(table, version=version).to_pyarrow_table().num_rows
        rec.memory()
        rec.cache(hits=7, misses=3, hit_bytes=700, miss_bytes=300)


def real_cache_results(path) -> bool:
    """A short real simulation by the cache part, if it has landed; its JSON is what benchmarks/cache.py writes."""
    try:
        from pipeline_opt.cache.simulate import simulate
        from pipeline_opt.cache.trace import Trace
        from pipeline_opt.output import to_jsonable
    except ImportError:
        return False
    rng = np.random.default_rng(1)
    keys = (rng.zipf(1.2, 5000) % 500).astype(np.int64)
    sizes = (keys % 7 + 1) * 1000
    trace = Trace("zipf-test", np.arange(5000), keys, sizes.astype(np.int64))
    report = simulate(trace, ["lru", "s3fifo"], [0.05, 0.1, 0.3])
    path.write_text(json.dumps(to_jsonable(report)))
    return True


def test_report_renders_from_real_results(tmp_path, compacted_table):
    results = tmp_path / "results"
    results.mkdir()
    has_cache = real_cache_results(results / "cache.json")
    metrics = tmp_path / "_metrics"
    record_reads(compacted_table, metrics)
    out = tmp_path / "report"
    rc = main(["report", "--out", str(out), "--results", str(results), "--metrics", str(metrics),
               "--table", str(compacted_table), "--json"])
    assert rc == 0
    page = (out / "index.html").read_text()
    referenced = re.findall(r"<img src='([^']+)'", page)
    expected = {"table_sizes_0.png", "read_latency.png", "metrics_latency.png", "metrics_cache.png",
                "metrics_memory.png", "metrics_throughput.png"} | ({"cache_mrc_0.png"} if has_cache else set())
    assert expected <= set(referenced)
    for name in referenced:
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 2000, name
    assert "missing compaction, loader, training_memory" in page
    assert "benchmarks/training_memory.py" in page  # says how to produce what is missing


def test_table_scan_finds_the_sizes_before_and_after_compaction(compacted_table):
    from pipeline_opt.monitor.sections import table_file_sizes

    sizes = table_file_sizes(str(compacted_table))
    assert list(sizes) == ["version 29 (before compaction)", "version 30 (latest)"]
    before, after = sizes.values()
    assert len(before) == 30 and len(after) == 1 and sum(after) < sum(before)


def test_missing_and_broken_results_never_fail_the_report(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "loader.json").write_text("{not json")
    (results / "training_memory.json").write_text(json.dumps({"gpu": "none", "oddly": [1, 2]}))
    res = build_report(tmp_path / "r", results, metrics_table=tmp_path / "no-metrics")
    page = (tmp_path / "r" / "index.html").read_text()
    assert res.images == [] and res.missing == ["compaction", "cache"]
    assert "loader.json could not be read" in page
    assert "training_memory.json holds no memory/speed pairs" in page
    assert "no metrics table at" in page


def test_readers_find_facts_in_nested_and_renamed_shapes(tmp_path):
    cache = {"traces": [{"trace": "cloudphysics", "results": [
        {"policy": "lru", "size_fraction": 0.1, "byte_miss_ratio": 0.5},
        {"policy": "lru", "size_fraction": 0.01, "byte_miss_ratio": 0.7}],
        "bound": [{"size_fraction": 0.1, "byte_miss_ratio": 0.2}]}]}
    (curves,) = extract.cache_curves(cache)
    assert curves.trace == "cloudphysics" and curves.policies["lru"] == [(0.01, 0.7), (0.1, 0.5)]
    assert curves.bound == [(0.1, 0.2)]
    training = {"gpu": "H200", "combinations": [
        {"name": "bf16+compile", "peak_memory_ratio": 0.76, "speedup": 8.4},
        {"name": "fp32", "peak_memory_ratio": 1.0, "speedup": 1.0}]}
    points, axes = extract.training_points(training)
    assert ("bf16+compile", 0.76, 8.4) in points and "fp32" in axes[0]
    plans = {"plans": [{"plan": "bf16", "peak_gib": 3.0, "predicted_speed_x": 1.0, "tokens_per_s": 886,
                        "memory_x": 0.88, "speed_x": 5.75, "breakdown_gib": {"params": 1.0}}]}
    assert extract.training_points(plans)[0] == [("bf16", 0.88, 5.75)]  # measured, never predicted
    assert extract.loss_curves({"plans": [{"plan": "fp32", "losses": [6.4, 6.3]}]}) == {"fp32": [6.4, 6.3]}
    del plans["plans"][0]["memory_x"]
    assert extract.training_points(plans) == ([("bf16", 3.0, 886.0)], ("peak memory", "tokens/s"))
    flat = {"results": [{"trace": t, "policy": "lru", "size_fraction": 0.1, "byte_miss_ratio": 0.5}
                        for t in ("a", "b")], "bound": [{"trace": "b", "size_fraction": 0.1, "byte_miss_ratio": 0.1}]}
    assert [(c.trace, c.bound) for c in extract.cache_curves(flat)] == [("a", []), ("b", [(0.1, 0.1)])]
    loader = {"rows": 10, "results": {"loader_rows_per_s": 2.5e7, "pyarrow_rows_per_s": 2.8e7}}
    assert sorted(v for _, v in extract.throughputs(loader)) == [2.5e7, 2.8e7]
    loader = {"throughput": {"pyarrow_scan": {"best_rows_per_s": 3e7, "median_rows_per_s": 2.8e7,
                                              "runs": [{"rows_per_s": 1.0}]},
                             "loader_shuffle_w0": {"best_rows_per_s": 2.6e7, "runs": [{"rows_per_s": 2.0}]}}}
    assert extract.throughputs(loader) == [("pyarrow_scan", 2.8e7), ("loader_shuffle_w0", 2.6e7)]
    compaction = {"queries": {"q1": {"before_s": 4.0, "after_s": 0.5}, "q6": {"before_s": 2.0, "after_s": 0.2}},
                  "file_sizes_before": [1, 2, 3], "file_sizes_after": [6]}
    assert extract.latency_pairs(compaction) == [("queries/q1", 4.0, 0.5), ("queries/q6", 2.0, 0.2)]
    flat = {"q1_before_s": 3.0, "q1_after_s": 1.0, "share_inside_before": 0.1, "share_inside_after": 0.99,
            "reads": {"q6": {"before": 2.0, "after": 0.5}}}
    assert extract.latency_pairs(flat) == [("q1_s", 3.0, 1.0), ("reads/q6", 2.0, 0.5)]
    assert extract.size_lists(compaction) == [("file_sizes", [1.0, 2.0, 3.0], [6.0])]
    bench = {"compaction": {"tiny": {"files": 2000, "q1": 8.0, "q6": 4.0}, "ours": {"files": 4, "q1": 1.0, "q6": 0.5},
                            "ours_vs_plain_wall": 0.9},
             "write_amplification": {"days": 30, "ours": {"write_amplification": 1.1},
                                     "plain": {"write_amplification": 3.0}}}
    assert extract.query_times(bench) == {"tiny": {"q1": 8.0, "q6": 4.0}, "ours": {"q1": 1.0, "q6": 0.5}}
    assert extract.variant_values(bench, "write_amplification") == [("ours", 1.1), ("plain", 3.0)]
    assert extract.variant_values(bench, "files") == [("tiny", 2000.0), ("ours", 4.0)]
    health = {"lineitem": {"before": {"stats": {"files_below": 900, "files_inside": 0, "files_above": 0}},
                           "after": {"stats": {"files_below": 0, "files_inside": 3, "files_above": 0}}}}
    assert [label for label, _ in extract.window_counts(health)] == ["lineitem/before/stats", "lineitem/after/stats"]
    assert load_results(tmp_path / "nowhere").missing == ["compaction", "loader", "training_memory", "cache"]


def test_tables_of_one_name_in_two_folders_get_a_plot_each(tmp_path, compacted_table):
    import shutil

    twin = tmp_path / "copy" / compacted_table.name
    shutil.copytree(compacted_table, twin)
    out = tmp_path / "report"
    rc = main(["report", "--out", str(out), "--results", str(tmp_path / "none"), "--table", str(compacted_table),
               "--table", str(twin)])
    assert rc == 0
    page = (out / "index.html").read_text()
    assert {"table_sizes_0.png", "table_sizes_1.png"} <= set(re.findall(r"<img src='([^']+)'", page))
    assert (out / "table_sizes_0.png").read_bytes() != b"" and (out / "table_sizes_1.png").is_file()
