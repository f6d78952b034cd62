"""Partitioning advisor: partition columns, Z-order or liquid clustering columns, or none, with the reasons.

Invariants: read-only (``relayout.apply_layout`` does the rewrite); every recommendation carries a reason that names
the figure it rests on. The rules follow the published Delta Lake / Databricks guidance:

- do not partition a table under ~1 TB (``PARTITION_MIN_TABLE_BYTES``), and only by a column whose partitions
  each hold ≥ 1 GB (``PARTITION_MIN_BYTES``);
- cluster (liquid clustering, or Z-order when the table stays partitioned, since the two cannot be combined) by
  at most 4 columns (``MAX_CLUSTER_COLUMNS``) that queries filter on and that have file statistics (data
  skipping reads min/max stats, collected for the first ``delta.dataSkippingNumIndexedCols`` = 32 columns or the
  ``delta.dataSkippingStatsColumns`` list);
- and by no more columns than the files can separate: k keys cut N files into about N^(1/k) ranges per key, so a
  key is added only while each key keeps ``KEY_RANGES`` ranges (N: the files the table compacts into at its
  adaptive target). A small table is clustered by its most filtered column alone.

Facts: sizes and partitions from the Delta log; column cardinalities from one Spark pass
(``approx_count_distinct``; with a query log only of the columns it filters on, the only ones a rule can pick);
filter frequencies from a query log when one is given.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from pipeline_opt.tables.plan import adaptive_target
from pipeline_opt.tables.predicates import filter_counts
from pipeline_opt.tables.settings import DEFAULT_WINDOW
from pipeline_opt.units import format_size

PARTITION_MIN_TABLE_BYTES = 10**12
PARTITION_MIN_BYTES = 10**9
MAX_CLUSTER_COLUMNS = 4
MIN_FILTER_SHARE = 0.1  # a column filtered by fewer queries than this does not earn a clustering key
KEY_RANGES = 4  # fewer ranges of files per key than this, and a key's filters skip little
DEFAULT_INDEXED_COLS = 32
_ATOMIC = ("string", "int", "bigint", "smallint", "tinyint", "date", "timestamp", "timestamp_ntz", "boolean",
           "decimal", "double", "float")


@dataclass
class ColumnFacts:
    name: str
    type: str
    distinct: Optional[int]  # approximate (HyperLogLog); None: not counted (a query log never filters on it)
    has_stats: bool
    filtered: int = 0  # queries in the log that filter on it


@dataclass
class PartitioningAdvice:
    path: str
    version: int
    bytes: int
    rows: int
    files: int
    queries: Optional[int]
    current_partition_by: list[str]
    current_cluster_by: list[str]
    partition_by: list[str]
    cluster_by: list[str]
    zorder_by: list[str]
    reasons: list[str]
    columns: list[ColumnFacts] = field(default_factory=list)
    applied: Optional[dict] = None

    @property
    def layout(self) -> str:
        kind = "partition" if self.partition_by else "none"
        if self.zorder_by:
            return f"{kind}+zorder"
        return "liquid" if self.cluster_by else kind

    @property
    def changes_layout(self) -> bool:
        return (self.partition_by != self.current_partition_by) or (self.cluster_by != self.current_cluster_by)

    def render(self) -> str:
        cur = ", ".join(self.current_partition_by) or "none"
        lines = [f"{self.path} (version {self.version}): {format_size(self.bytes)}, {self.rows:,} rows, "
                 f"{self.files:,} files; partitioned by {cur}"
                 + (f", clustered by {', '.join(self.current_cluster_by)}" if self.current_cluster_by else ""),
                 f"  recommended layout: {self.layout}"
                 + "".join(f"; {k} {', '.join(v)}" for k, v in (("partition by", self.partition_by),
                           ("cluster by", self.cluster_by), ("Z-order by", self.zorder_by)) if v)]
        lines += [f"  - {r}" for r in self.reasons]
        if self.applied:
            lines.append(f"  applied: {self.applied}")
        elif self.changes_layout:
            lines.append("  run with --apply to re-lay the table (one commit, verified row for row)")
        return "\n".join(lines)


def advise(spark, path, predicates: Optional[list[str]] = None,
           min_table_bytes: int = PARTITION_MIN_TABLE_BYTES,
           min_partition_bytes: int = PARTITION_MIN_BYTES,
           files_after: Optional[int] = None) -> PartitioningAdvice:
    """Recommend a layout for the table at ``path`` (a path, or a resolved ``TableRef``); ``predicates`` is a query
    log (None: no log).

    The two size floors are the guidance's; tests lower them to exercise the large-table rules on small tables.
    ``files_after``: the files the table will be laid out in (default: its bytes over the adaptive target of the
    default window), which bounds the number of clustering keys.
    """
    from pipeline_opt.delta import TableRef, check_table_path
    from pipeline_opt.tables.health import table_health

    ref = path if isinstance(path, TableRef) else TableRef(check_table_path(path))
    health = table_health(ref.location)
    detail = _describe_detail(spark, ref)
    columns = _column_facts(spark, ref, detail["properties"], predicates)
    reasons: list[str] = []
    floors = (min_table_bytes, min_partition_bytes)
    partition_by = _partition_columns(health, columns, predicates is not None, reasons, floors)
    if files_after is None:
        files_after = max(1, round(health.stats.bytes / adaptive_target(health.stats.bytes, DEFAULT_WINDOW)[0]))
    if partition_by:  # keys order the files of each partition
        files_after = max(1, files_after // next(c.distinct or 1 for c in columns if c.name == partition_by[0]))
    keys = _cluster_columns(columns, partition_by, len(predicates) if predicates is not None else None, reasons,
                            files_after)
    return PartitioningAdvice(
        ref.label, health.version, health.stats.bytes, health.stats.rows, health.stats.files,
        None if predicates is None else len(predicates), list(health.partition_columns), detail["clustering"],
        partition_by, [] if partition_by else keys, keys if partition_by else [], reasons, columns)


def _partition_columns(health, columns: list[ColumnFacts], have_log: bool, reasons: list[str],
                       floors: tuple[int, int]) -> list[str]:
    size, current = health.stats.bytes, list(health.partition_columns)
    min_table, min_part = floors
    if size < min_table:
        reasons.append(f"table is {format_size(size)}, under {_floor(min_table)}: do not partition (partitions of "
                       "a small table hold small files and add listing cost; data skipping serves filters instead)")
        if current:
            avg = size / max(len(health.partitions), 1)
            reasons.append(f"current partitioning by {', '.join(current)} makes {len(health.partitions):,} "
                           f"partitions averaging {format_size(avg)} (each should hold ≥ {_floor(min_part)}): "
                           "remove it")
        return []
    fits = [c for c in columns if (c.filtered or not have_log) and c.type in _ATOMIC[:9] and (c.distinct or 0) >= 2
            and size / c.distinct >= min_part]
    if not fits:
        reasons.append(f"table is {format_size(size)} but no column{' that queries filter on' if have_log else ''} "
                       f"splits it into partitions of ≥ {_floor(min_part)}: do not partition")
        return []
    best = max(fits, key=lambda c: (c.filtered, c.name in current, -(c.distinct or 0)))
    reasons.append(f"partition by {best.name}: {best.distinct:,} partitions of ~{format_size(size / best.distinct)} "
                   f"(≥ {_floor(min_part)} each)" + (f", filtered by {best.filtered} queries" if have_log else ""))
    return [best.name]


def _floor(n: int) -> str:
    return {PARTITION_MIN_TABLE_BYTES: "1 TB", PARTITION_MIN_BYTES: "1 GB"}.get(n, f"{n:,} bytes")


def _cluster_columns(columns: list[ColumnFacts], partition_by: list[str], queries: Optional[int],
                     reasons: list[str], files: int) -> list[str]:
    if queries is None:
        reasons.append("no query log given (--predicates): clustering columns cannot be ranked; none recommended")
        return []
    floor = max(1, int(queries * MIN_FILTER_SHARE + 0.999))
    most = max_keys(files)
    keys: list[str] = []
    for c in sorted(columns, key=lambda c: (-c.filtered, -(c.distinct or 0), c.name)):
        if c.filtered < floor or c.name in partition_by:
            continue
        if not c.has_stats:
            reasons.append(f"{c.name} is filtered by {c.filtered} queries but has no file statistics: cannot "
                           "cluster by it (list it in delta.dataSkippingStatsColumns)")
        elif (c.distinct or 0) < 2 or c.type not in _ATOMIC:
            reasons.append(f"{c.name} ({c.type}, {c.distinct} distinct values) cannot separate files: skipped")
        elif len(keys) == MAX_CLUSTER_COLUMNS:
            reasons.append(f"{c.name} left out: at most {MAX_CLUSTER_COLUMNS} clustering columns (each extra "
                           "column weakens the others' locality)")
        elif len(keys) == most:
            laid_out = f"{files:,} file{'s' if files != 1 else ''}" + (" per partition" if partition_by else "")
            reasons.append(f"{c.name} left out: the table lays out in about {laid_out}, which give "
                           f"{most} key{'s' if most > 1 else ''} ≥ {KEY_RANGES} ranges each; another key would "
                           "leave each fewer ranges to skip")
        else:
            keys.append(c.name)
            reasons.append(f"cluster by {c.name}: filtered by {c.filtered} of {queries} queries, "
                           f"{c.distinct:,} distinct values, has statistics")
    if not keys:
        reasons.append(f"no column is filtered by ≥ {floor} of {queries} queries with usable statistics: no clustering")
    elif partition_by:
        reasons.append("the table stays partitioned, and liquid clustering cannot be combined with partitioning: "
                       "Z-order these columns (set zorder_by in conf/tables.yml for the compaction job)")
    else:
        reasons.append("liquid clustering rather than Z-order: keys can change later without a full rewrite and "
                       "OPTIMIZE clusters incrementally")
    return keys


def max_keys(files: int) -> int:
    """The most clustering keys ``files`` files can serve: k with ``files ** (1 / k) >= KEY_RANGES`` (at least 1)."""
    k = 1
    while k < MAX_CLUSTER_COLUMNS and files >= KEY_RANGES ** (k + 1):
        k += 1
    return k


def _describe_detail(spark, ref) -> dict:
    row = spark.sql(f"DESCRIBE DETAIL {ref.sql}").collect()[0].asDict()
    return {"clustering": list(row.get("clusteringColumns") or []), "properties": dict(row.get("properties") or {})}


def _column_facts(spark, ref, properties: dict, predicates: Optional[list[str]]) -> list[ColumnFacts]:
    """Type, stats coverage, filter count and approximate distinct count of each top-level column (one Spark pass,
    over the filtered columns only when there is a query log: a column no query filters on is never picked)."""
    from pyspark.sql import functions as F

    from pipeline_opt.sql import quote_ident

    df = spark.sql(ref.select())
    fields = df.schema.fields
    stats_cols = _stats_columns([f.name for f in fields], properties)
    filtered = filter_counts(predicates or [], [f.name for f in fields])
    counted = {i for i, f in enumerate(fields)
               if _base_type(f) in _ATOMIC and (predicates is None or filtered.get(f.name))}
    aggs = [F.approx_count_distinct(F.col(quote_ident(fields[i].name))).alias(f"d{i}") for i in sorted(counted)]
    row = df.agg(*aggs).collect()[0].asDict() if aggs else {}
    return [ColumnFacts(f.name, _base_type(f), int(row[f"d{i}"] or 0) if i in counted else None, f.name in stats_cols,
                        filtered.get(f.name, 0))
            for i, f in enumerate(fields)]


def _stats_columns(names: list[str], properties: dict) -> set[str]:
    explicit = properties.get("delta.dataSkippingStatsColumns")
    if explicit:
        return {n.strip().strip("`") for n in explicit.split(",")}
    n = int(properties.get("delta.dataSkippingNumIndexedCols", DEFAULT_INDEXED_COLS))
    return set(names if n < 0 else names[:n])


def _base_type(f) -> str:
    text = f.dataType.simpleString()
    return text.split("(")[0] if text.startswith("decimal") else text
