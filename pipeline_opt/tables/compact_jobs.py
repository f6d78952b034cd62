"""Turning ``compact`` arguments or ``conf/tables.yml`` into checked (path, options) jobs.

Invariant: every input — paths, window, target, partition filter, column names, config — is checked here, before
any Spark session starts or anything is written; a bad one raises one ``PipelineOptError`` naming it.
"""
from __future__ import annotations

from typing import Optional

from pipeline_opt.config import TablesConfig, TableSettings, load
from pipeline_opt.errors import ConfigError
from pipeline_opt.tables.compact import CompactOptions
from pipeline_opt.tables.partition_filter import PartitionFilter
from pipeline_opt.tables.plan import Window
from pipeline_opt.tables.sql import quote_ident
from pipeline_opt.tables.table_ref import check_table_path


def jobs_from_args(args) -> list[tuple[str, CompactOptions]]:
    """One job for ``PATH``, or one per configured table for ``--config`` (``--table`` picks one)."""
    if args.config:
        config = load(args.config, TablesConfig)
        chosen = [config.table(args.table)] if args.table else config.tables
        if not chosen:
            raise ConfigError(f"{args.config}: no tables configured")
        return [job_for(config, t, args) for t in chosen]
    if args.table:
        raise ConfigError("--table needs --config")
    return [job_for(TablesConfig(), None, args, path=args.path)]


def job_for(config: TablesConfig, table: Optional[TableSettings], args=None,
            path: Optional[str] = None) -> tuple[str, CompactOptions]:
    """Options for one table: command-line flags win over the table's settings, which win over the defaults."""
    lo, hi, target = config.window(table)
    flag = lambda name: getattr(args, name, None) if args is not None else None  # noqa: E731
    window = Window(_pick(flag("min_file_size"), lo), _pick(flag("max_file_size"), hi),
                    _pick(flag("target_file_size"), target))
    text = _pick(flag("partition_filter"), table.partition_filter if table else None)
    zorder = [c.strip() for c in flag("zorder_by").split(",")] if flag("zorder_by") else \
        (table.zorder_by if table else [])
    for column in zorder + (table.cluster_by if table else []):
        quote_ident(column)
    d = config.defaults
    options = CompactOptions(window, PartitionFilter.parse(text) if text else None, zorder,
                             list(table.cluster_by) if table else [], d.min_bin_files, d.max_deleted_rows_ratio,
                             int(d.batch_bytes), verify=not flag("no_verify"))
    return check_table_path(path or table.path), options


def _pick(first, second):
    return first if first is not None else second
