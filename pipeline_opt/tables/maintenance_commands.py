"""``pipeline-opt`` subcommands for table maintenance: ``partitioning``, ``vacuum``, ``schedule``."""
from __future__ import annotations

from pipeline_opt.cli import add_json_flag


def register(sub) -> None:
    _register_partitioning(sub)
    _register_vacuum(sub)
    _register_schedule(sub)


def _register_partitioning(sub) -> None:
    p = sub.add_parser("partitioning", help="recommend partition / Z-order / liquid clustering columns, or none")
    p.add_argument("path", help="Delta table path or URI")
    p.add_argument("--predicates", default=None,
                   help="query log: one query or WHERE clause per line (or JSON lines with a 'predicate' key)")
    p.add_argument("--apply", action="store_true",
                   help="re-lay the table as recommended in one Delta commit, verified row for row")
    add_json_flag(p)
    p.set_defaults(func=_partitioning)


def _partitioning(args):
    from pipeline_opt.spark import get_spark
    from pipeline_opt.tables.partitioning import advise
    from pipeline_opt.tables.predicates import read_predicate_log
    from pipeline_opt.tables.relayout import apply_layout
    from pipeline_opt.tables.table_ref import check_table_path

    predicates = read_predicate_log(args.predicates) if args.predicates else None
    check_table_path(args.path)  # a bad path fails before a JVM starts
    spark = get_spark("pipeline_opt-partitioning")
    advice = advise(spark, args.path, predicates)
    if args.apply:
        advice.applied = apply_layout(spark, args.path, advice)
    return advice


def _register_vacuum(sub) -> None:
    from pipeline_opt.tables.vacuum import SAFE_RETENTION_HOURS

    p = sub.add_parser("vacuum", help="VACUUM a Delta table (dry run unless --execute)")
    p.add_argument("path", help="Delta table path or URI")
    p.add_argument("--retention-hours", type=float, default=SAFE_RETENTION_HOURS,
                   help=f"keep files needed by versions of the last N hours (default {SAFE_RETENTION_HOURS})")
    p.add_argument("--execute", action="store_true", help="delete the files (default: dry run, list them)")
    p.add_argument("--i-know-retention-is-unsafe", dest="allow_unsafe", action="store_true",
                   help=f"allow a retention below {SAFE_RETENTION_HOURS} hours (breaks time travel and "
                        "concurrent readers)")
    add_json_flag(p)
    p.set_defaults(func=_vacuum)


def _vacuum(args):
    from pipeline_opt.spark import get_spark
    from pipeline_opt.tables.table_ref import check_table_path
    from pipeline_opt.tables.vacuum import check_retention, vacuum

    check_retention(args.retention_hours, args.allow_unsafe)  # refuse before starting a JVM
    check_table_path(args.path)
    spark = get_spark("pipeline_opt-vacuum")
    return vacuum(spark, args.path, args.retention_hours, dry_run=not args.execute, allow_unsafe=args.allow_unsafe)


def _register_schedule(sub) -> None:
    p = sub.add_parser("schedule", help="rank configured tables by expected compaction benefit")
    p.add_argument("--config", default="conf/tables.yml", help="tables config (default conf/tables.yml)")
    p.add_argument("--access-log", default=None,
                   help="reads per table: JSON lines with a 'table' key (name or path), or one table per line")
    p.add_argument("--table", action="append", default=None, help="only this configured table (repeatable)")
    add_json_flag(p)
    p.set_defaults(func=_schedule)


def _schedule(args):
    from pipeline_opt.tables.schedule import schedule

    return schedule(args.config, access_log=args.access_log, only=args.table)
