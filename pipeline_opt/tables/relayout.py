"""Re-laying a Delta table out as the partitioning advisor recommends, in one verified commit.

Invariants: the rewrite is one Delta commit (``CREATE OR REPLACE TABLE … AS SELECT`` of the version read), which
keeps the table's history and time travel; the new version is verified row for row against a fingerprint of the
version read (``verify.check_or_restore``); on a mismatch the table is restored and ``VerificationError`` raised,
so a failed re-layout loses nothing. An unchanged layout rewrites nothing. A table named in the catalog is replaced
by name, at its own location: an external table keeps its ``LOCATION``.
"""
from __future__ import annotations

from typing import Optional

from pipeline_opt.delta import TableLike, TableRef, table_ref
from pipeline_opt.sql import quote_ident, sql_literal
from pipeline_opt.tables.partitioning import PartitioningAdvice

_SOURCE_VIEW = "pipeline_opt_relayout_source"
# Table properties that describe the layout itself; the new layout brings its own.
_LAYOUT_PROPERTIES = ("clusteringColumns", "delta.feature.", "delta.clustering", "delta.minReaderVersion",
                      "delta.minWriterVersion")


def apply_layout(spark, path: TableLike, advice: PartitioningAdvice, source=None) -> dict:
    """Rewrite ``path`` with the advised layout; ``source`` (tests) replaces the rows read from the table."""
    from pipeline_opt.tables.verify import check_or_restore, current_version, fingerprint, read_version

    if not advice.changes_layout:
        return {"changed": False}
    ref = table_ref(path)
    before = fingerprint(spark, ref)
    rows = source if source is not None else read_version(spark, ref, before.version)
    rows.createOrReplaceTempView(_SOURCE_VIEW)
    try:
        spark.sql(relayout_sql(ref, advice, *_detail(spark, ref)))
    finally:
        spark.catalog.dropTempView(_SOURCE_VIEW)
    after = current_version(spark, ref)
    result = check_or_restore(spark, ref, before, after)
    return {"changed": True, "before_version": before.version, "version": after, "commits": after - before.version,
            "verified_checks": result.checks, "partition_by": advice.partition_by, "cluster_by": advice.cluster_by}


def relayout_sql(path: TableLike, advice: PartitioningAdvice, properties: Optional[dict] = None,
                 location: Optional[str] = None) -> str:
    """The one statement of the rewrite; every name quoted; ``location`` keeps an external table where it is."""
    spec = ""
    if advice.cluster_by:
        spec = f" CLUSTER BY ({', '.join(map(quote_ident, advice.cluster_by))})"
    elif advice.partition_by:
        spec = f" PARTITIONED BY ({', '.join(map(quote_ident, advice.partition_by))})"
    props = ""
    if properties:
        props = " TBLPROPERTIES (" + ", ".join(f"{sql_literal(k)} = {sql_literal(v)}"
                                                for k, v in sorted(properties.items())) + ")"
    order = ""
    if advice.zorder_by:  # until compaction's OPTIMIZE ZORDER BY runs, sorted files already skip well
        order = f" SORT BY ({', '.join(map(quote_ident, advice.zorder_by))})"
    select = f"SELECT * FROM {quote_ident(_SOURCE_VIEW)}"
    if order:
        select = f"SELECT * FROM {quote_ident(_SOURCE_VIEW)} DISTRIBUTE BY " \
                 f"{', '.join(map(quote_ident, advice.partition_by))}{order}"
    at = f" LOCATION {sql_literal(location)}" if location else ""
    return f"CREATE OR REPLACE TABLE {table_ref(path).sql} USING delta{spec}{at}{props} AS {select}"


def _detail(spark, ref: TableRef) -> tuple[dict, Optional[str]]:
    """User table properties to carry over (retention settings, stats columns …) and, for an external catalog
    table, the location its replacement must keep (a managed table's stays the catalog's to choose)."""
    row = spark.sql(f"DESCRIBE DETAIL {ref.sql}").collect()[0]
    props = {k: v for k, v in dict(row["properties"] or {}).items() if not k.startswith(_LAYOUT_PROPERTIES)}
    return props, (str(row["location"]) if ref.name and _is_external(spark, ref) else None)


def _is_external(spark, ref: TableRef) -> bool:
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {ref.sql}").collect()
    kinds = [str(r["data_type"]).strip().upper() for r in rows if str(r["col_name"]).strip() == "Type"]
    return bool(kinds) and kinds[0] == "EXTERNAL"
