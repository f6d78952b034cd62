"""What one compaction run is asked to do, from the settings of ``conf/tables.yml`` and the caller's overrides.

Invariant: every input — window, target, partition filter, ordering columns — is checked when the options are
built, before any Spark session starts or anything is written; a bad one raises one ``PipelineOptError`` naming it.
Precedence: the caller's overrides win over the table's settings, which win over the defaults.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from pipeline_opt.sql import quote_ident
from pipeline_opt.tables.partition_filter import PartitionFilter
from pipeline_opt.tables.settings import DEFAULT_WINDOW, TablesConfig, TableSettings, Window


@dataclass
class CompactOptions:
    window: Window = DEFAULT_WINDOW
    partition_filter: Optional[PartitionFilter] = None
    zorder_by: list[str] = field(default_factory=list)
    cluster_by: list[str] = field(default_factory=list)
    min_bin_files: int = 4
    max_deleted_ratio: float = 0.1
    batch_bytes: int = 2 * 10**9
    retries: int = 5
    backoff_s: float = 0.5
    verify: bool = True
    engine: str = "spark"  # "spark" (Delta's OPTIMIZE), "delta-rs" (in process) or "auto" (tables.inprocess)


def compact_options(config: TablesConfig, table: Optional[TableSettings] = None, *,
                    min_file_size: Optional[int] = None, max_file_size: Optional[int] = None,
                    target_file_size: Optional[int] = None, partition_filter: Optional[str] = None,
                    zorder_by: Optional[list[str]] = None, verify: bool = True,
                    engine: Optional[str] = None) -> CompactOptions:
    """The options of ``table`` (None: a table outside the config, under its defaults) with overrides applied."""
    window = config.window(table).with_overrides(min_file_size, max_file_size, target_file_size)
    text = partition_filter if partition_filter is not None else (table.partition_filter if table else None)
    zorder = list(zorder_by) if zorder_by else (list(table.zorder_by) if table else [])
    cluster = list(table.cluster_by) if table else []
    for column in zorder + cluster:
        quote_ident(column)
    d = config.defaults
    return CompactOptions(window, PartitionFilter.parse(text) if text else None, zorder, cluster,
                          d.min_bin_files, d.max_deleted_rows_ratio, int(d.batch_bytes), verify=verify,
                          engine=engine or (table.engine if table and table.engine else d.engine))
