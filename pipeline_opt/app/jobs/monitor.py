"""Monitoring jobs: ``report`` (HTML with plots, trends, rollouts) and ``metrics`` (summary of the metrics table)."""
from __future__ import annotations

from pathlib import Path

from pipeline_opt.app.job import Context, Param, job
from pipeline_opt.app.monitoring import monitor_settings
from pipeline_opt.delta import check_table_path
from pipeline_opt.monitor.report import build_report
from pipeline_opt.monitor.store import read_metrics, summarize


@job("report", "HTML report with plots from benchmark results and the metrics table",
     Param("out", "folder to write index.html and the PNG plots into", Path, required=True),
     Param("results", "folder of benchmark JSON results", Path, default=Path("benchmarks/results")),
     Param("metrics", "Delta table of metrics written by the jobs"),
     Param("table", "Delta table whose file sizes to plot before/after compaction (repeatable)", repeat=True),
     Param("configs", "versioned config store, to list rollbacks and changes"),
     Param("settings", "the jobs' settings store, to show rollouts (default: config_store of conf/monitor.yml)"),
     Param("monitor_config", "conf/monitor.yml whose metrics_table and config_store to show by default"))
def report(ctx: Context, args):
    tables = [check_table_path(t) for t in args.table]
    config = monitor_settings(args.monitor_config)
    metrics = args.metrics or (config.metrics_table if Path(config.metrics_table).is_dir() else None)
    settings = args.settings or config.config_store
    return build_report(args.out, args.results, metrics, tables, configs=args.configs, settings=settings)


@job("metrics", "summary (count, p50, p95) of a Delta table of metrics",
     Param("path", "Delta table of metrics", positional=True, required=True),
     Param("by", "also split by this label (e.g. table, op)"))
def metrics(ctx: Context, args):
    return summarize(read_metrics(check_table_path(args.path)), by_label=args.by)
