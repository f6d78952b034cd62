"""``pipeline-opt`` subcommands of the monitor part: ``report`` and ``metrics``."""
from __future__ import annotations

from pathlib import Path

from pipeline_opt.cli import add_json_flag


def register(sub) -> None:
    p = sub.add_parser("report", help="HTML report with plots from benchmark results and the metrics table")
    p.add_argument("--out", required=True, type=Path, help="folder to write index.html and the PNG plots into")
    p.add_argument("--results", type=Path, default=None,
                   help="folder of benchmark JSON results (default benchmarks/results)")
    p.add_argument("--metrics", default=None, help="Delta table of metrics written by the jobs")
    p.add_argument("--table", action="append", default=[], metavar="PATH",
                   help="Delta table whose file sizes to plot before/after compaction (repeatable)")
    p.add_argument("--configs", default=None, help="versioned config store, to list rollbacks and changes")
    add_json_flag(p)
    p.set_defaults(func=_report)

    p = sub.add_parser("metrics", help="summary (count, p50, p95) of a Delta table of metrics")
    p.add_argument("path", help="Delta table of metrics")
    p.add_argument("--by", default=None, metavar="LABEL", help="also split by this label (e.g. table, op)")
    add_json_flag(p)
    p.set_defaults(func=_metrics)


def _report(args):
    from pipeline_opt.deltatable import check_local_table, is_remote
    from pipeline_opt.monitor.report import build_report

    for table in args.table:
        if not is_remote(table):
            check_local_table(table)
    from pipeline_opt.monitor.results import default_results_dir

    results = args.results if args.results is not None else default_results_dir()
    return build_report(args.out, results, args.metrics, args.table, configs=args.configs)


def _metrics(args):
    from pipeline_opt.deltatable import check_local_table, is_remote
    from pipeline_opt.monitor.store import read_metrics, summarize

    if not is_remote(args.path):
        check_local_table(args.path)
    return summarize(read_metrics(args.path), by_label=args.by)
