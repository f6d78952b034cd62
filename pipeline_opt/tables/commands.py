"""``pipeline-opt`` subcommands of the tables part."""
from __future__ import annotations

import argparse

from pipeline_opt.cli import add_json_flag
from pipeline_opt.config import parse_size
from pipeline_opt.errors import PipelineOptError


def size_arg(text: str) -> int:
    """argparse type for sizes such as ``16MB`` or ``1GiB``."""
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub) -> None:
    p = sub.add_parser("health", help="file-size health of a Delta table, from its log only")
    p.add_argument("path", help="Delta table path or URI")
    p.add_argument("--min-file-size", type=size_arg, default="16MB", help="window floor (default 16MB)")
    p.add_argument("--max-file-size", type=size_arg, default="1GB", help="window ceiling (default 1GB)")
    p.add_argument("--version", type=int, default=None, help="table version (default latest)")
    add_json_flag(p)
    p.set_defaults(func=_health)
    register_compact(sub)


def _health(args):
    from pipeline_opt.tables.health import table_health

    if args.min_file_size > args.max_file_size:
        raise PipelineOptError(f"--min-file-size {args.min_file_size} is larger than "
                               f"--max-file-size {args.max_file_size}")
    return table_health(args.path, args.min_file_size, args.max_file_size, version=args.version)


def register_compact(sub) -> None:
    p = sub.add_parser("compact", help="compact a Delta table (or every table of a config) into the size window")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("path", nargs="?", help="Delta table path or URI")
    where.add_argument("--config", help="conf/tables.yml: compact every configured table (or --table NAME)")
    p.add_argument("--table", help="with --config: only this table")
    p.add_argument("--dry-run", action="store_true", help="print the plan and why; write nothing")
    p.add_argument("--min-file-size", type=size_arg, default=None, help="window floor (default 16MB)")
    p.add_argument("--max-file-size", type=size_arg, default=None, help="window ceiling (default 1GB)")
    p.add_argument("--target-file-size", type=size_arg, default=None, help="fixed target (default adaptive)")
    p.add_argument("--partition-filter", default=None, help="e.g. \"year >= 1995 AND region IN ('EU')\"")
    p.add_argument("--zorder-by", default=None, help="comma-separated columns to Z-order by")
    p.add_argument("--no-verify", action="store_true", help="skip the verification suite (not recommended)")
    add_json_flag(p)
    p.set_defaults(func=_compact)


def _compact(args):
    import sys

    from pipeline_opt.tables.compact import compact_table
    from pipeline_opt.tables.compact_jobs import jobs_from_args

    jobs = jobs_from_args(args)  # every input is checked before Spark starts
    from pipeline_opt.spark import get_spark

    spark = None if args.dry_run else get_spark("pipeline_opt-compact")  # a plan needs only the log
    say = (lambda msg: print(f"[compact] {msg}", file=sys.stderr, flush=True))
    results = [compact_table(spark, path, options, dry_run=args.dry_run, progress=say) for path, options in jobs]
    if args.json:
        return results[0].to_dict() if len(results) == 1 else [r.to_dict() for r in results]
    return results[0] if len(results) == 1 else _Many(results)


class _Many:
    """Results of several tables: rendered one after another, JSON as a list."""

    def __init__(self, results):
        self.results = results

    def render(self) -> str:
        return "\n\n".join(r.render() for r in self.results)
