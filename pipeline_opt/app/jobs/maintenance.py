"""Maintenance jobs: ``partitioning`` (advice, optionally applied) and ``vacuum``.

Invariants: ``vacuum`` is a dry run unless ``--execute``; ``vacuum --from-log`` computes the files from the Delta log
(``tables.vacuum_log``: no listing of data folders, no commit, no Spark unless a catalog name needs resolving); a job
that commits holds the table's writer lease (on S3);
every chosen table's retention is checked before the first table is touched, so one unsafe retention refuses the whole
run; a bad path or query log fails before a JVM starts; a catalog table name is resolved once, through Spark.
"""
from __future__ import annotations

from pipeline_opt.app.job import Context, Param, job
from pipeline_opt.app.jobs.tables import TABLE_SELECTION
from pipeline_opt.app.selection import choose_tables, per_table, resolve, storage_options, writing
from pipeline_opt.storage import for_engine
from pipeline_opt.tables.partitioning import advise
from pipeline_opt.tables.predicates import read_predicate_log
from pipeline_opt.tables.relayout import apply_layout
from pipeline_opt.tables.vacuum import SAFE_RETENTION_HOURS, VacuumResult, check_retention, vacuum
from pipeline_opt.tables.vacuum_log import vacuum_from_log


@job("partitioning", "recommend partition / Z-order / liquid clustering columns, or none, with the reasons",
     Param("path", "Delta table path or URI, or catalog name (db.table, catalog.schema.table)", positional=True,
           required=True),
     Param("predicates", "query log: one query or WHERE clause per line (or JSON lines with a 'predicate' key)"),
     Param("apply", "re-lay the table as recommended in one Delta commit, verified row for row", flag=True))
def partitioning(ctx: Context, args):
    predicates = read_predicate_log(args.predicates) if args.predicates else None
    ref = resolve(args.path, lambda: ctx.spark)
    ref = ref.with_location(for_engine(ref.location, "spark"))
    advice = advise(ctx.spark, ref, predicates)
    if args.apply:
        with writing(ctx.spark, ref.location):
            advice.applied = apply_layout(ctx.spark, ref, advice)
    return advice


@job("vacuum", "VACUUM a Delta table or the configured tables (a dry run unless --execute)",
     *TABLE_SELECTION,
     Param("retention_hours", "keep files needed by versions of the last N hours (default: the config's, else "
                              f"{SAFE_RETENTION_HOURS})", float),
     Param("execute", "delete the files (default: dry run, list them)", flag=True),
     Param("from_log", "compute the files from the Delta log instead of listing the table folder (like VACUUM LITE: "
                       "fast on big tables, never sees uncommitted or orphan files; no Spark needed)", flag=True),
     Param("allow_unsafe", f"allow a retention below {SAFE_RETENTION_HOURS} hours (breaks time travel and "
                           "concurrent readers)", flag=True, cli="--i-know-retention-is-unsafe"))
def vacuum_tables(ctx: Context, args):
    if args.retention_hours is not None:
        check_retention(args.retention_hours, args.allow_unsafe)  # refuse before reading any config or table
    chosen = choose_tables(args, lambda: ctx.spark)
    plans = []
    for t, ref in chosen.items():
        hours = args.retention_hours if args.retention_hours is not None else chosen.config.retention_hours(t)
        check_retention(hours, args.allow_unsafe)
        location = for_engine(ref.location, "delta-rs") if args.from_log else for_engine(ref.location, "spark")
        plans.append((ref.with_location(location), hours, storage_options(ref.location)))
    results: list[VacuumResult] = []
    for ref, hours, options in plans:
        if args.from_log:  # commits nothing, so no writer lease; deletes only files the log removed
            results.append(vacuum_from_log(ref, hours, dry_run=not args.execute, allow_unsafe=args.allow_unsafe,
                                           storage_options=options))
            continue
        if not args.execute:
            results.append(vacuum(ctx.spark, ref, hours, allow_unsafe=args.allow_unsafe, storage_options=options))
            continue
        with writing(ctx.spark, ref.location):
            results.append(vacuum(ctx.spark, ref, hours, dry_run=False, allow_unsafe=args.allow_unsafe,
                                  storage_options=options))
    return per_table(chosen, results)
