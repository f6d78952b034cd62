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
    snapshot = _snapshot_at(log, version)
    if snapshot.version() != version:
        return None
    functions = jvm.org.apache.spark.sql.functions
    file_name = functions.element_at(functions.split(functions.col("path"), "/"), -1)
    adds = snapshot.allFiles().filter(file_name.isin(_seq(jvm, names))).collectAsList()
    if adds.size() != len(set(names)):  # a name the version does not hold: let the SQL read say what it finds
        return None
    frame = log.createDataFrame(snapshot, _seq(jvm, adds), False, getattr(log, "createDataFrame$default$4")())
    return DataFrame(frame, spark)


def _snapshot_at(log, version: int):
    """``DeltaLog.getSnapshotAt`` with its default arguments: four on Delta 4 (Scala 2.13), two on Delta 3."""
    defaults = [getattr(log, f"getSnapshotAt$default${i}") for i in (2, 3, 4)]
    try:
        return log.getSnapshotAt(version, *(d() for d in defaults))
    except Exception:  # noqa: BLE001 - Py4J names no method of that arity: the Delta 3 form
        return log.getSnapshotAt(version, defaults[0]())


def _seq(jvm, items):
    """A Scala immutable sequence of ``items`` (a Python list or a java.util.List), on Scala 2.13 or 2.12."""
    if isinstance(items, list):
        java = jvm.java.util.ArrayList()
        for item in items:
            java.add(item)
        items = java
    try:
        return jvm.scala.jdk.javaapi.CollectionConverters.asScala(items).toList()
    except Exception:  # noqa: BLE001 - Scala 2.12 has only the older converters
        return jvm.scala.collection.JavaConverters.asScalaBufferConverter(items).asScala().toList()
