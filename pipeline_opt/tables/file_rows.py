"""The live rows of exactly some data files of a Delta table version, read without scanning the others.

Why: a ``_metadata.file_path`` filter selects the right rows but Delta's file index does not prune on it, so Spark
reads every file of the version and drops the rest (``benchmarks/metadata_pruning.py``: 20 of 20 files read for a
filter naming 2). Delta's own ``DeltaLog.createDataFrame`` (what OPTIMIZE reads its bins with) scans a given list
of ``AddFile`` actions of a snapshot, with their deletion vectors applied, column mapping resolved and partition
values filled in.

Invariants: the rows are those the table holds at ``version`` in the named files, exactly as a SQL read of the
version filtered to those files returns them, in the table's column order; None where the JVM route is not there
(Spark Connect) or Delta's internal API does not answer as expected, so the caller keeps its SQL filter.
"""
from __future__ import annotations

from typing import Optional

from pipeline_opt.delta import TableRef


def file_rows(spark, ref: TableRef, version: int, names: list[str]):
    """A DataFrame of the rows of the files named ``names`` (file names, the last path component) at ``version``,
    or None when only the SQL filter can read them here."""
    jvm = getattr(spark, "_jvm", None)
    if jvm is None or ref.name:  # Spark Connect has no JVM handle; a catalog name is located by SQL
        return None
    try:
        return _read(spark, jvm, ref.location, int(version), names)
    except Exception:  # noqa: BLE001 - Py4J and Delta internals vary by version: fall back to the SQL filter
        return None


def _read(spark, jvm, location: str, version: int, names: list[str]) -> Optional[object]:
    from pyspark.sql import DataFrame

    log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, location)
    snapshot = log.getSnapshotAt(version, *(getattr(log, f"getSnapshotAt$default${i}")() for i in (2, 3, 4)))
    if snapshot.version() != version:
        return None
    functions, scala = jvm.org.apache.spark.sql.functions, jvm.scala.jdk.javaapi.CollectionConverters
    wanted = jvm.java.util.ArrayList()
    for name in names:
        wanted.add(name)
    file_name = functions.element_at(functions.split(functions.col("path"), "/"), -1)
    adds = snapshot.allFiles().filter(file_name.isin(scala.asScala(wanted).toSeq())).collectAsList()
    if adds.size() != len(set(names)):  # a name the version does not hold: let the SQL read say what it finds
        return None
    frame = log.createDataFrame(snapshot, scala.asScala(adds).toList(), False,
                                getattr(log, "createDataFrame$default$4")())
    return DataFrame(frame, spark)
