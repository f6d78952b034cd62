"""Showcase of the monitor part on the demo lakehouse: real metrics, the closed loop on real job runs, an A/B
rollout, a rollback drill, the report.

Invariants: reads the lakehouse, never writes to it (metrics, settings, configs and the report go under ``out``);
the closed loop runs the real ``health`` job with monitoring on, so its points are the job's own facts; the rollback
drill runs on a simulated clock with injected latencies and is labelled as a drill everywhere it appears.
"""
from __future__ import annotations

from pathlib import Path
from typing import Hashable

import numpy as np

from pipeline_opt.app import job as jobs
from pipeline_opt.app.demo.inputs import DemoInputs
from pipeline_opt.app.monitoring import monitoring
from pipeline_opt.cache import policies
from pipeline_opt.delta import open_table, operation_versions
from pipeline_opt.monitor.ab import Rollout, apply_outcome, bucket, run_rollout
from pipeline_opt.monitor.metrics import Recorder
from pipeline_opt.monitor.report import build_report
from pipeline_opt.monitor.rollback import Baseline, RollbackGuard, SimulatedClock
from pipeline_opt.monitor.rollouts import Settings
from pipeline_opt.monitor.sections import table_file_sizes
from pipeline_opt.monitor.settings import MonitorConfig
from pipeline_opt.monitor.store import DeltaSink, read_metrics, summarize
from pipeline_opt.monitor.versions import ConfigStore

TABLES = ("lineitem", "orders")
NIGHT = 24 * 3600
LOOP_KEY = "compaction.min_file_size"
REPEATS = 2
COLUMNS = {"lineitem": ["l_quantity", "l_extendedprice", "l_discount"], "orders": ["o_totalprice"]}


def run(inputs: DemoInputs) -> dict:
    lakehouse, out = inputs.lakehouse, inputs.out
    out.mkdir(parents=True, exist_ok=True)
    metrics, store = out / "_metrics", ConfigStore(out / "_configs")
    tables = [lakehouse / t for t in TABLES if (lakehouse / t / "_delta_log").is_dir()]
    facts: dict = {}
    with Recorder(job="monitor-demo", sinks=[DeltaSink(metrics)]) as rec:
        for table in tables:
            read_table(rec, table)
        rec.memory(job="monitor-demo")
        if tables:
            facts["rollout"] = cache_rollout(rec, store, table_file_sizes(str(tables[0])))
        facts["rollback_drill"] = rollback_drill(rec, store)
    facts["closed_loop"] = closed_loop(tables, out)
    points = read_metrics(metrics)
    facts["query_p50_s"] = {s.name: round(s.p50, 4) for s in summarize(points, by_label="query")
                            if s.name.startswith("latency.query")}
    scanned = tables + compacted_by_other_showcases(out)
    report = build_report(out / "report", inputs.results, metrics, [str(t) for t in scanned], configs=out / "_configs",
                          settings=out / "_settings")
    return {"report": report.path, "plots": len(report.images), "metric_points": len(points),
            "missing_results": report.missing, **facts}


def closed_loop(tables: list[Path], out: Path, nights: int = 2) -> dict:
    """Nightly ``health`` runs of the tables with monitoring on (into ``out/_metrics``, settings in
    ``out/_settings``, on a simulated clock): a night on the stored window floor, then a rollout of a lower floor,
    each table on its arm; the status comes from the points those runs recorded."""
    config = MonitorConfig(metrics_table=str(out / "_metrics"), config_store=str(out / "_settings"), ab_min_units=2)
    conf = out / "monitor-loop.yml"
    conf.write_text(f"metrics_table: {config.metrics_table}\nconfig_store: {config.config_store}\nab_min_units: 2\n")
    clock = SimulatedClock()
    settings = Settings(config.config_store, config, clock)
    settings.set(LOOP_KEY, "16MB", "demo", "the shipped window floor")
    arms: dict[str, str] = {}
    with monitoring(conf, clock):
        for night in range(nights + 1):
            if night == 1:
                settings.start(LOOP_KEY, "8MB", "demo", "a lower floor: fewer files count as small")
            for table in tables:
                health = jobs.run(jobs.JOBS["health"], {"path": str(table)}, progress=lambda m: None)
                arms[table.name] = f"{settings.resolve(LOOP_KEY, table.name).arm or 'baseline'} " \
                                   f"(floor {health.min_size:,} B)"
            clock.advance(NIGHT)
    points = [p for p in read_metrics(config.metrics_table) if p.job == "health"]
    status = settings.summary(LOOP_KEY, points)
    return {"job_points": len(points), "runs": len({p.run_id for p in points}), "arms": arms,
            "rollout": {k: status.get(k) for k in ("rollout", "status", "percent", "samples", "next")},
            "files_by_table": {p.labels["table"]: int(p.value) for p in points if p.name == "fact.stats.files"}}


def compacted_by_other_showcases(out: Path, limit: int = 4) -> list[Path]:
    """Delta tables the other showcases wrote beside ``out`` (e.g. a compacted copy) whose history has an OPTIMIZE."""
    found = []
    for log in sorted(out.parent.glob("*/**/_delta_log")):
        table = log.parent
        if out in table.parents or len(table.relative_to(out.parent).parts) > 3:
            continue
        if operation_versions(table, "OPTIMIZE"):
            found.append(table)
    return found[:limit]


def read_table(rec: Recorder, table: Path) -> None:
    """Reads the table's columns at the version before its first compaction (if any) and at the latest one."""
    latest = open_table(table)
    optimized = operation_versions(table, "OPTIMIZE")
    phases = {"before": optimized[0] - 1, "after": None} if optimized and optimized[0] > 0 else {"now": None}
    columns = [c for c in COLUMNS.get(table.name, []) if c in latest.schema().to_arrow().names]
    if "deletionVectors" in (latest.protocol().reader_features or []):
        import torch  # noqa: F401  (the loader's import cost is not a query's latency)
    for phase, version in phases.items():
        for _ in range(REPEATS):
            with rec.timed("query", query=table.name, phase=phase) as span:
                span.rows = scan_rows(table, version, columns)


def scan_rows(table: Path, version, columns: list[str]) -> int:
    """Live rows of a full scan of ``columns``, files from the Delta log: delta-rs where it can read the table,
    the loader (which applies deletion vectors itself) where the table enables deletion vectors."""
    dt = open_table(table, version=version)
    if "deletionVectors" not in (dt.protocol().reader_features or []):
        return dt.to_pyarrow_table(columns=columns or None).num_rows
    from pipeline_opt.loader import DeltaDataset

    dataset = DeltaDataset(str(table), columns=columns or None, batch_size=65536, version=version)
    return sum(len(next(iter(batch.values()))) for batch in dataset)


def cache_rollout(rec: Recorder, store: ConfigStore, sizes_by_version: dict) -> dict:
    """A/B of the cache policy (LRU → S3-FIFO) on request streams over the table's real file sizes."""
    sizes = np.asarray(list(sizes_by_version.values())[0], dtype=np.int64)
    store.put("cache", {"policy": "lru"}, note="baseline")
    candidate = store.put("cache", {"policy": "s3fifo"}, note="candidate", activate=False)

    def measure(unit: Hashable, side: str) -> float:
        rng = np.random.default_rng(int(bucket(unit, "demo") * 1e6))
        files = rng.zipf(1.1, 400) % len(sizes)
        policy = policies.make("s3fifo" if side == "candidate" else "lru", max(1, int(sizes.sum() * 0.1)))
        missed = sum(int(sizes[f]) for f in files if not policy.request(int(f), int(sizes[f])))
        ratio = missed / max(1, int(sizes[files].sum()))
        rec.cache(hits=0, misses=0, hit_bytes=int(sizes[files].sum()) - missed, miss_bytes=missed, arm=side)
        return ratio

    rollout = run_rollout(Rollout("cache-policy"), lambda r: [f"stream-{r}-{i}" for i in range(300)], measure)
    apply_outcome(rollout, store, "cache", candidate.version)
    return {"decisions": [f"{d.percent:g} %: {d.action}" for d in rollout.decisions],
            "active_config": store.get("cache").config}


def rollback_drill(rec: Recorder, store: ConfigStore) -> dict:
    """Simulated clock: query latency at 2× baseline for 4 minutes reverts the compaction config."""
    store.put("compaction", {"min_file_size": "16MB"}, note="defaults")
    store.put("compaction", {"min_file_size": "128MB"}, note="drill candidate")
    clock = SimulatedClock()
    drill = Recorder(job="rollback-drill", clock=clock)
    guard = RollbackGuard(store, "compaction", Baseline({"latency.query": 0.1}, note="drill"), recorder=drill)
    for _ in range(9):  # one sample every 30 s
        drill.record("latency.query", 0.2, "timer", drill="true")
        clock.advance(30)
    if guard.event is None:
        return {"fired": False}
    rec.record("event.rollback", 1, "event", "count", config="compaction", drill="true",
               reason=guard.event.firing.reason)
    return {"fired": True, "reason": guard.event.firing.reason,
            "reverted_to": store.get("compaction").config}
