"""The maintenance jobs' library calls, shared by ``jobs/*.py`` (spark-submit) and ``notebooks/*.py`` (Databricks).

Invariants: each function takes a Spark session and the checked table list and returns one metrics dict per table
(plain JSON values), so a job prints them and a notebook displays them, with no logic of its own; every table name
and path is checked before the first table is touched; relative table paths resolve against ``base_dir`` when
given (a storage URI on Databricks), else against the current directory.
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Optional

from pipeline_opt.config import TablesConfig, TableSettings, load
from pipeline_opt.errors import ConfigError
from pipeline_opt.output import to_jsonable


def job_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """The options every maintenance job takes: which config, which of its tables, where relative paths live."""
    p = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    p.add_argument("--config", default="conf/tables.yml", help="tables config (default conf/tables.yml)")
    p.add_argument("--table", action="append", help="only this configured table (repeatable)")
    p.add_argument("--base-dir", help="resolve relative table paths against this folder or URI")
    return p


def configured_tables(config_path: str, names: Optional[list[str]] = None,
                      base_dir: Optional[str] = None) -> tuple[TablesConfig, list[TableSettings]]:
    """The config and the chosen tables (all when ``names`` is empty), paths joined to ``base_dir``."""
    config = load(config_path, TablesConfig)
    chosen = [config.table(n) for n in names] if names else list(config.tables)
    if not chosen:
        raise ConfigError(f"{config_path}: no tables configured")
    if base_dir:
        chosen = [dataclasses.replace(t, path=_join(base_dir, t.path)) for t in chosen]
    return config, chosen


def _join(base: str, path: str) -> str:
    if "://" in path or path.startswith(("/", "dbfs:")):
        return path
    return base.rstrip("/") + "/" + path


def health_report(spark, config: TablesConfig, tables: list[TableSettings]) -> list[dict]:
    """Health from the Delta log, cross-checked against Delta's own ``DESCRIBE DETAIL`` file count."""
    from pipeline_opt.tables.health import table_health
    from pipeline_opt.tables.sql import delta_ref
    from pipeline_opt.tables.table_ref import check_table_path

    paths = [check_table_path(t.path) for t in tables]
    out = []
    for t, path in zip(tables, paths):
        lo, hi, _ = config.window(t)
        h = table_health(path, lo, hi)
        detail = spark.sql(f"DESCRIBE DETAIL {delta_ref(path)}").collect()[0]
        s = h.stats
        out.append({"table": t.name, "path": path, "version": h.version, "files": s.files, "bytes": s.bytes,
                    "rows": s.rows, "files_below": s.files_below, "files_above": s.files_above,
                    "share_inside": round(s.share_inside, 4), "healthy": h.healthy,
                    "delta_num_files": int(detail["numFiles"]), "partitions": len(h.partitions)})
    return out


def compact_tables(spark, config_path: str, names: Optional[list[str]] = None, access_log: Optional[str] = None,
                   everything: bool = False, dry_run: bool = False, base_dir: Optional[str] = None) -> list[dict]:
    """Compact the tables ``schedule`` picks (``everything``: every chosen table); one summary per table."""
    from pipeline_opt.tables.compact import compact_table
    from pipeline_opt.tables.compact_jobs import job_for
    from pipeline_opt.tables.schedule import rank_tables

    config, tables = configured_tables(config_path, names, base_dir)
    jobs = {t.name: job_for(config, t) for t in tables}
    ranked = rank_tables(config_path, [(t.name, *jobs[t.name]) for t in tables], access_log)
    out = []
    for row in ranked.tables:
        if not (row.compact_now or everything):
            out.append({"table": row.name, "path": row.path, "skipped": row.reason, "score": row.score})
            continue
        path, options = jobs[row.name]
        result = compact_table(spark, path, options, dry_run=dry_run)
        out.append({"table": row.name, "score": row.score, **result.summary()})
    return out


def vacuum_tables(spark, config_path: str, names: Optional[list[str]] = None,
                  retention_hours: Optional[float] = None, execute: bool = False, allow_unsafe: bool = False,
                  base_dir: Optional[str] = None) -> list[dict]:
    """VACUUM each chosen table with its configured retention (``retention_hours`` overrides); dry run by default."""
    from pipeline_opt.tables.table_ref import check_table_path
    from pipeline_opt.tables.vacuum import check_retention, vacuum

    config, tables = configured_tables(config_path, names, base_dir)
    plans = []
    for t in tables:
        hours = retention_hours if retention_hours is not None else (
            t.vacuum_retention_hours if t.vacuum_retention_hours is not None else config.defaults.vacuum_retention_hours)
        check_retention(hours, allow_unsafe)  # refuse the whole run before deleting anything
        plans.append((t, check_table_path(t.path), hours))
    return [{"table": t.name, **to_jsonable(vacuum(spark, path, hours, dry_run=not execute,
                                                   allow_unsafe=allow_unsafe))}
            for t, path, hours in plans]


def run_job(name: str, produce) -> int:
    """Run ``produce()`` and print each metrics dict as one JSON line; a user error is one line and exit 2."""
    import json
    import sys

    from pipeline_opt.errors import PipelineOptError

    try:
        rows = produce()
    except PipelineOptError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return e.exit_code
    for row in rows:
        print(json.dumps(to_jsonable(row), default=str), flush=True)
    return 0


def metrics_frame(rows: list[dict]):
    """The metrics dicts as a pandas DataFrame for a notebook's ``display`` (nested values as JSON text)."""
    import json

    import pandas as pd

    flat = [{k: json.dumps(v, default=str) if isinstance(v, (dict, list)) else v for k, v in to_jsonable(r).items()}
            for r in rows]
    return pd.DataFrame(flat)
