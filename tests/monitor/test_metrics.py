"""The recorder, the Delta table of metrics (read back by delta-rs and by Spark) and Prometheus exposition."""
from __future__ import annotations

import urllib.request

import pytest

from pipeline_opt.monitor.metrics import MemorySink, Recorder, host_rss_bytes, is_oom
from pipeline_opt.monitor.prometheus import PrometheusExporter, PrometheusServer
from pipeline_opt.monitor.rollback import SimulatedClock
from pipeline_opt.monitor.store import DeltaSink, read_metrics, summarize


def record_some(rec: Recorder) -> None:
    for i in range(20):
        with rec.timed("query", table="lineitem") as span:
            sum(range(1000 * (i + 1)))
            span.rows = 1000
    with rec.timed("step", model="mlp") as span:
        span.tokens = 512
    rec.cache(hits=30, misses=10, hit_bytes=3000, miss_bytes=7000, table="orders")
    rec.memory(job="test")


def test_recorder_records_every_kind_of_metric():
    sink = MemorySink()
    with Recorder(job="t", sinks=[sink], clock=SimulatedClock(100.0)) as rec:
        record_some(rec)
    names = {p.name for p in sink.points}
    assert {"latency.query", "latency.step", "throughput.rows_per_s", "throughput.tokens_per_s",
            "cache.hit_rate", "cache.byte_hit_rate", "memory.host_rss_bytes"} <= names
    hit = next(p for p in sink.points if p.name == "cache.hit_rate")
    assert hit.value == 0.75 and hit.labels == {"table": "orders"} and hit.ts == 100.0 and hit.job == "t"
    assert next(p for p in sink.points if p.name == "cache.byte_hit_rate").value == 0.3
    assert 10 * 2**20 < host_rss_bytes() < 64 * 2**30
    by_name = {s.name: s for s in summarize(sink.points)}
    q = by_name["latency.query"]
    assert q.count == 20 and 0 < q.p50 <= q.p95 and q.unit == "s"


def test_oom_is_recorded_and_reraised_and_failing_sinks_never_break_the_job():
    class Broken:
        def write(self, points):
            raise OSError("disk full")

    rec = Recorder(sinks=[Broken()])
    with pytest.raises(RuntimeError):
        with rec.timed("step"):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert is_oom(MemoryError()) and not is_oom(ValueError("bad"))
    assert rec.flush() == 1 and rec.sink_errors == ["Broken: disk full"]


def test_metrics_table_is_delta_and_spark_reads_it(spark, tmp_path):
    table = tmp_path / "_metrics"
    for run in range(2):  # two runs, two appends
        with Recorder(job=f"job{run}", sinks=[DeltaSink(table)]) as rec:
            record_some(rec)
    points = read_metrics(table)
    assert {p.job for p in points} == {"job0", "job1"} and len(points) > 40
    # one Spark query (the machine is small): row count, a map lookup and a percentile, straight from Delta
    row = spark.sql(
        "SELECT count(*) AS n, "
        "max(CASE WHEN name = 'cache.hit_rate' THEN labels['table'] END) AS hit_table, "
        "max(CASE WHEN name = 'cache.hit_rate' THEN value END) AS hit_rate, "
        "percentile(CASE WHEN name = 'latency.query' THEN value END, 0.95) AS p95 "
        f"FROM delta.`{table}`").first()
    assert (row.n, row.hit_table, row.hit_rate) == (len(points), "orders", 0.75)
    assert row.p95 == pytest.approx(next(s.p95 for s in summarize(points) if s.name == "latency.query"))
    from deltalake import DeltaTable

    assert [h["operation"] for h in DeltaTable(table).history()] == ["WRITE", "WRITE"]  # append-only


def test_reading_a_missing_metrics_table_gives_no_points(tmp_path):
    assert read_metrics(tmp_path / "nothing") == []


def test_prometheus_text_format_over_loopback():
    exporter = PrometheusExporter()
    rec = Recorder()
    rec.listeners.append(exporter)
    record_some(rec)
    rec.gauge("cache.hit_rate", 0.5, table='we"ird\nname')
    with PrometheusServer(exporter, port=0) as server:
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5).read().decode()
    assert "# TYPE pipeline_opt_latency_query_seconds summary" in body
    assert 'pipeline_opt_latency_query_seconds_count{table="lineitem"} 20' in body
    assert 'pipeline_opt_latency_query_seconds{quantile="0.95",table="lineitem"}' in body
    assert 'pipeline_opt_cache_hit_rate{table="we\\"ird\\nname"} 0.5' in body
    assert body.count("# TYPE pipeline_opt_cache_hit_rate gauge") == 1
    for line in body.splitlines():  # every sample line is `name{labels} number`
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


@pytest.mark.gpu
def test_gpu_memory_is_sampled_under_cuda():
    import torch

    block = torch.empty(64 * 2**20, dtype=torch.uint8, device="cuda")
    sample = Recorder().memory()
    assert sample["memory.gpu_allocated_bytes"] >= block.numel()
    assert sample["memory.gpu_peak_bytes"] >= sample["memory.gpu_allocated_bytes"]


def test_wiring_builds_recorder_prometheus_and_guard_from_config(tmp_path):
    from pipeline_opt.monitor.rollback import Baseline
    from pipeline_opt.monitor.settings import MonitorConfig
    from pipeline_opt.monitor.versions import ConfigStore
    from pipeline_opt.monitor.wiring import guard_for, recorder_for

    cfg = MonitorConfig(metrics_table=str(tmp_path / "_metrics"), config_store=str(tmp_path / "_configs"),
                        prometheus_port=0)
    store = ConfigStore(cfg.config_store)
    store.put("training", {"precision": "fp32"})
    store.put("training", {"precision": "bf16"})
    Baseline({"latency.step": 1.0}).save(tmp_path / "baseline.json")
    with recorder_for("train", cfg) as rec:
        guard = guard_for("training", rec, tmp_path / "baseline.json", cfg)
        rec.oom(op="step")
        body = urllib.request.urlopen(f"http://127.0.0.1:{rec.prometheus.port}/metrics", timeout=5).read().decode()
    assert rec.prometheus is None  # closed with the recorder
    assert guard.event.firing.trigger == "oom" and store.get("training").config == {"precision": "fp32"}
    assert "pipeline_opt_event_oom_total" in body
    assert {p.name for p in read_metrics(cfg.metrics_table)} == {"event.oom", "event.rollback"}
