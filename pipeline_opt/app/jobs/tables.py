"""Table jobs: ``health``, ``compact``, ``schedule``, ``fingerprint`` and ``copy``.

Invariants: every input is checked before a Spark session starts; ``health``, ``schedule`` and ``compact
--dry-run`` read only Delta logs and start Spark only to resolve a catalog table name; ``compact`` with a config first
ranks the tables (``schedule``) and compacts those worth it (``--all``: every chosen table), one result per table.
A table is a path or a catalog name (``db.t``, ``cat.db.t``): SQL addresses it by name, the log reader by location.
"""
from __future__ import annotations

from pipeline_opt.app.arms import for_table
from pipeline_opt.app.job import Context, Param, columns, count, job, size
from pipeline_opt.app.selection import choose_tables, per_table, resolve, storage_options, writing
from pipeline_opt.delta import TableRef
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.storage import for_engine
from pipeline_opt.tables.compact import CompactionResult, check_options, compact_table
from pipeline_opt.tables.file_check import SAMPLE, require_files
from pipeline_opt.tables.health import table_health
from pipeline_opt.tables.options import compact_options
from pipeline_opt.tables.schedule import rank_tables
from pipeline_opt.tables.settings import ENGINES
from pipeline_opt.tables.undo import is_local

PATH = Param("path", "Delta table path or URI, or catalog name (db.table, catalog.schema.table)", positional=True)
CONFIG = Param("config", "conf/tables.yml: act on its tables instead of one path")
TABLE = Param("table", "with --config: only this table (repeatable)", repeat=True)
BASE_DIR = Param("base_dir", "with --config: resolve relative table paths against this folder or URI")
MIN_SIZE = Param("min_file_size", "window floor, e.g. 16MB (default: the config's, else 16MB)", size)
MAX_SIZE = Param("max_file_size", "window ceiling, e.g. 1GB (default: the config's, else 1GB)", size)
ACCESS_LOG = Param("access_log", "reads per table: JSON lines with a 'table' key (name or path), or one per line")
TABLE_SELECTION = (PATH, CONFIG, TABLE, BASE_DIR)


@job("health", "file-size health of a Delta table (or of every configured table), from its log only",
     *TABLE_SELECTION, MIN_SIZE, MAX_SIZE, Param("version", "table version (default latest)", count),
     Param("check_files", "also check that the data files the version references exist (all of them on local "
                          f"storage, a sample of {SAMPLE:,} on object stores); missing files fail the job", flag=True))
def health(ctx: Context, args):
    chosen = choose_tables(args, lambda: ctx.spark)
    if args.version is not None and chosen.from_config:
        raise PipelineOptError("--version applies to one table path, not to --config")
    results = []
    for t, ref in chosen.items():
        own = for_table(args, t.name)  # under a rollout each table of a config is on its own arm
        window = chosen.config.window(t).with_overrides(own.min_file_size, own.max_file_size)
        path = for_engine(ref.location, "delta-rs")
        result = table_health(ref.with_location(path), window, version=args.version,
                              storage_options=storage_options(path), check_files=args.check_files)
        if result.file_check is not None:
            require_files(result.path, result.version, result.file_check)
        results.append(result)
    return per_table(chosen, results)


def _engine(text) -> str:
    if str(text) not in ENGINES:
        raise PipelineOptError(f"{text!r} is not an engine: expected one of {', '.join(ENGINES)}")
    return str(text)


@job("compact", "compact a Delta table (or the configured tables worth it) into the file-size window",
     *TABLE_SELECTION, ACCESS_LOG,
     Param("all", "with --config: compact every chosen table, not only those the schedule picks", flag=True),
     Param("dry_run", "print the plan and why; write nothing", flag=True),
     MIN_SIZE, MAX_SIZE,
     Param("target_file_size", "fixed target size (default adaptive to the table's size)", size),
     Param("partition_filter", "only these partitions, e.g. \"year >= 1995 AND region IN ('EU')\""),
     Param("zorder_by", "comma-separated columns to Z-order by", columns),
     Param("no_verify", "skip the verification suite (not recommended)", flag=True),
     Param("engine", "rewrite engine: spark (Delta's OPTIMIZE), delta-rs (in this process, local path tables) or "
           "auto (delta-rs where it is safe); default: the config's, else spark", _engine))
def compact(ctx: Context, args):
    chosen = choose_tables(args, lambda: ctx.spark)
    refs = {t.name: ref for t, ref in chosen.items()}
    jobs = [(t, _options(chosen, t, for_table(args, t.name))) for t in chosen.tables]
    for t, options in jobs:
        check_options(refs[t.name], options)  # every table's options fit it before Spark starts
    worth = {t.name: "" for t, _ in jobs}
    if chosen.from_config and not args.all:
        ranked = rank_tables(args.config, [(t.name, t.path, o) for t, o in jobs], args.access_log)
        worth = {r.name: "" if r.compact_now else r.reason for r in ranked.tables}
    results: list[dict[str, str] | CompactionResult] = []  # skipped tables as {path, skipped: why}
    for t, options in jobs:
        ref = refs[t.name]
        if worth[t.name]:
            results.append({"path": ref.label, "skipped": worth[t.name]})
            continue
        if args.dry_run:  # a plan needs only the log
            results.append(compact_table(None, ref, options, dry_run=True, progress=ctx.progress))
            continue
        # A local path table may be compacted in process (engine delta-rs/auto): Spark starts only if it is needed.
        session = (lambda: ctx.spark) if options.engine != "spark" and is_local(ref.location) else ctx.spark
        with writing(session, ref.location):
            results.append(compact_table(session, _for_spark(ref), options, progress=ctx.progress))
    return per_table(chosen, results)


def _options(chosen, t, own):
    """One table's compaction options (``own``: its arguments; under a rollout each table is on its own arm)."""
    return compact_options(chosen.config, t if chosen.from_config else None, min_file_size=own.min_file_size,
                           max_file_size=own.max_file_size, target_file_size=own.target_file_size,
                           partition_filter=own.partition_filter, zorder_by=own.zorder_by, verify=not own.no_verify,
                           engine=own.engine)


def _for_spark(ref: TableRef) -> TableRef:
    """A path table as Spark's hadoop-aws names it (``s3a://``); a named table is SQL's by its name anyway."""
    return ref.with_location(for_engine(ref.location, "spark"))


@job("schedule", "rank the configured tables by expected compaction benefit (reads only their logs)",
     Param("config", "tables config", required=True), TABLE, BASE_DIR, ACCESS_LOG)
def schedule(ctx: Context, args):
    chosen = choose_tables(args, lambda: ctx.spark)
    jobs = [(t.name, t.path, compact_options(chosen.config, t)) for t in chosen.tables]
    return rank_tables(args.config, jobs, args.access_log)


@job("fingerprint", "content fingerprint of a table version: rows, column types, null counts, checksums (Spark)",
     Param("path", "Delta table path or URI, or catalog name", positional=True, required=True),
     Param("version", "table version (default latest)", count))
def fingerprint(ctx: Context, args):
    from pipeline_opt.tables.verify import fingerprint as table_fingerprint

    table = _for_spark(resolve(args.path, lambda: ctx.spark))  # a bad path is refused before Spark starts
    return table_fingerprint(ctx.spark, table, args.version)


@job("copy", "write the latest snapshot of a Delta table as a new Delta table (one commit; Spark)",
     Param("src", "source Delta table (path or catalog name)", positional=True, required=True),
     Param("dest", "new table's path or URI (must not exist)", positional=True, required=True),
     Param("partition_by", "comma-separated partition columns of the copy", columns))
def copy(ctx: Context, args):
    source = _for_spark(resolve(args.src, lambda: ctx.spark))
    spark, dest = ctx.spark, for_engine(args.dest, "spark")
    with writing(spark, args.dest):
        writer = spark.sql(source.select()).write.format("delta").mode("errorifexists")
        if args.partition_by:
            writer = writer.partitionBy(*args.partition_by)
        writer.save(dest)
    return {"dest": args.dest, "rows": spark.read.format("delta").load(dest).count()}
