"""Delta tables written by real Spark + Delta for the loader tests, built once per session under a temp folder.

Each entry of the ``tables`` fixture is (path, expected) where ``expected`` maps id → row dict of the latest
version, derived from what the Spark SQL did, never from reading the table back.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def _save(df, path, *, mode="append", partition_by=None, options=None):
    writer = df.write.format("delta").mode(mode)
    for k, v in (options or {}).items():
        writer = writer.option(k, v)
    if partition_by:
        writer = writer.partitionBy(partition_by)
    writer.save(str(path))


def _ids(spark, lo, hi, parts):
    return spark.range(lo, hi, numPartitions=parts).selectExpr(
        "id", "cast(id % 7 as int) as k", "cast(id * 0.25 as decimal(12,2)) as price",
        "cast(id % 3 as int) as grp", "cast(id as double) / 2 as half")


@pytest.fixture(scope="session")
def tables(spark, tmp_path_factory):
    reuse = os.environ.get("PIPELINE_OPT_LOADER_TEST_TABLES")  # a folder to build once and reuse while developing
    root = Path(reuse) if reuse else tmp_path_factory.mktemp("loader_tables")
    if reuse and (root / "done").exists():
        return _expected(root)
    _build(spark, root)
    (root / "done").touch()
    return _expected(root)


def _build(spark, root: Path) -> None:
    # deletion vectors: 2 appends into a partitioned table, then a DELETE that writes DVs
    dv = root / "dv"
    _save(_ids(spark, 0, 1000, 4), dv, partition_by="grp", options={"delta.enableDeletionVectors": "true"})
    _save(_ids(spark, 1000, 2000, 3), dv, partition_by="grp")
    spark.sql(f"DELETE FROM delta.`{dv}` WHERE id % 10 = 3 OR id BETWEEN 100 AND 149")

    # overwrite: version 0 holds 0..299, version 1 replaces it with 1000..1199
    ow = root / "overwrite"
    _save(_ids(spark, 0, 300, 2), ow)
    _save(_ids(spark, 1000, 1200, 2), ow, mode="overwrite")

    # schema evolution: a later append adds column `extra` with mergeSchema
    ev = root / "evolve"
    _save(_ids(spark, 0, 300, 2), ev)
    _save(_ids(spark, 300, 600, 2).selectExpr("*", "id * 10 as extra"), ev, options={"mergeSchema": "true"})

    # column mapping by name, a rename, then a DELETE with deletion vectors
    cm = root / "colmap"
    _save(_ids(spark, 0, 900, 3), cm, options={"delta.columnMapping.mode": "name",
                                               "delta.enableDeletionVectors": "true"})
    spark.sql(f"ALTER TABLE delta.`{cm}` RENAME COLUMN k TO k_renamed")
    spark.sql(f"DELETE FROM delta.`{cm}` WHERE id % 9 = 0")

    # one file, a dense deletion vector (a Roaring bitmap container) plus a long run
    dense = root / "dense"
    _save(_ids(spark, 0, 20000, 1), dense, options={"delta.enableDeletionVectors": "true"})
    spark.sql(f"DELETE FROM delta.`{dense}` WHERE (id < 10000 AND id % 2 = 0) OR id BETWEEN 12000 AND 15000")


def _expected(root: Path) -> dict:
    return {"dv": (root / "dv", {i for i in range(2000) if i % 10 != 3 and not 100 <= i <= 149}),
            "overwrite": (root / "overwrite", set(range(1000, 1200))),
            "evolve": (root / "evolve", set(range(600))),
            "colmap": (root / "colmap", {i for i in range(900) if i % 9 != 0}),
            "dense": (root / "dense", {i for i in range(20000)
                                       if not ((i < 10000 and i % 2 == 0) or 12000 <= i <= 15000)})}


@pytest.fixture(scope="session")
def dv_table(tables):
    return tables["dv"]


@pytest.fixture
def non_delta_dir(tmp_path) -> Path:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.parquet").write_bytes(b"PAR1")
    return tmp_path / "plain"
