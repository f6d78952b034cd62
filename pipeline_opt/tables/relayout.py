"""Re-laying a Delta table out as the partitioning advisor recommends, in one verified commit.

Invariants: the rewrite is one Delta commit (``CREATE OR REPLACE TABLE … AS SELECT`` of the version read), which
keeps the table's history and time travel; the new version is verified row for row against a fingerprint of the
version read (``verify.check_or_restore``); on a mismatch the table is restored and ``VerificationError`` raised,
so a failed re-layout loses nothing. An unchanged layout rewrites nothing.
"""
from __future__ import annotations

from typing import Optional

from pipeline_opt.sql import delta_ref, quote_ident, sql_literal
from pipeline_opt.tables.partitioning import PartitioningAdvice

_SOURCE_VIEW = "pipeline_opt_relayout_source"
# Table properties that describe the layout itself; the new layout brings its own.
_LAYOUT_PROPERTIES = ("clusteringColumns", "delta.feature.", "delta.clustering", "delta.minReaderVersion",
                      "delta.minWriterVersion")


def apply_layout(spark, path: str, advice: PartitioningAdvice, source=None) -> dict:
    """Rewrite ``path`` with the advised layout; ``source`` (tests) replaces the rows read from the table."""
    from pipeline_opt.tables.verify import check_or_restore, current_version, fingerprint, read_version

    if not advice.changes_layout:
        return {"changed": False}
    before = fingerprint(spark, path)
    rows = source if source is not None else read_version(spark, path, before.version)
    rows.createOrReplaceTempView(_SOURCE_VIEW)
    try:
        spark.sql(relayout_sql(path, advice, _properties(spark, path)))
    finally:
        spark.catalog.dropTempView(_SOURCE_VIEW)
    after = current_version(spark, path)
    result = check_or_restore(spark, path, before, after)
    return {"changed": True, "before_version": before.version, "version": after, "commits": after - before.version,
            "verified_checks": result.checks, "partition_by": advice.partition_by, "cluster_by": advice.cluster_by}


def relayout_sql(path: str, advice: PartitioningAdvice, properties: Optional[dict] = None) -> str:
    """The one statement of the rewrite; every name quoted."""
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
    return f"CREATE OR REPLACE TABLE {delta_ref(path)} USING delta{spec}{props} AS {select}"


def _properties(spark, path: str) -> dict:
    """User table properties to carry over (retention settings, stats columns …)."""
    row = spark.sql(f"DESCRIBE DETAIL {delta_ref(path)}").collect()[0]
    props = dict(row["properties"] or {})
    return {k: v for k, v in props.items() if not k.startswith(_LAYOUT_PROPERTIES)}
