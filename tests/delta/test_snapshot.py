"""The one Delta-log reader on tables Spark wrote: every checkpoint kind Delta writes (classic, multi-part, v2 with
sidecars in JSON or Parquet) followed by JSON commits, deletion vectors counted as Spark counts them."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from pipeline_opt.delta import log as replay
from pipeline_opt.delta import read_snapshot
from pipeline_opt.delta.snapshot import read_file_table
from pipeline_opt.errors import DeltaLogError
from pipeline_opt.tables.health import table_health
from tests.harness.synthetic_log import write_synthetic_log

CHECKPOINT_EVERY = 3  # commits 0-2 before the checkpoint at version 3, then two more commits replayed from JSON
KINDS = {
    "classic": ({}, {}, r"^0{19}3\.checkpoint\.parquet$"),
    "multi-part": ({}, {"spark.databricks.delta.checkpoint.partSize": "2"},
                   r"^0{19}3\.checkpoint\.\d{10}\.\d{10}\.parquet$"),
    "v2 json": ({"delta.checkpointPolicy": "v2"}, {"spark.databricks.delta.checkpoint.partSize": "2"},
                r"^0{19}3\.checkpoint\.[0-9a-f-]{36}\.json$"),
    "v2 parquet": ({"delta.checkpointPolicy": "v2"},
                   {"spark.databricks.delta.checkpoint.partSize": "2",
                    "spark.databricks.delta.checkpointV2.topLevelFileFormat": "parquet"},
                   r"^0{19}3\.checkpoint\.[0-9a-f-]{36}\.parquet$"),
}


def _write(spark, path: str, props: dict, confs: dict) -> None:
    ids = spark.range(0, 3000, numPartitions=3).selectExpr("id", "cast(id % 3 as int) as g")
    writer = ids.write.format("delta").partitionBy("g").option("delta.enableDeletionVectors", "true")
    writer = writer.option("delta.checkpointInterval", str(CHECKPOINT_EVERY))
    for key, value in props.items():
        writer = writer.option(key, value)
    writer.save(path)                                                     # version 0
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id % 10 = 0")            # 1: deletion vectors
    spark.range(3000, 3600, numPartitions=2).selectExpr("id", "cast(id % 3 as int) as g") \
        .write.format("delta").mode("append").save(path)                  # 2
    previous = {key: spark.conf.get(key, None) for key in confs}
    for key, value in confs.items():
        spark.conf.set(key, value)
    try:
        spark.sql(f"DELETE FROM delta.`{path}` WHERE id % 10 = 1")        # 3: the checkpoint is written after it
    finally:
        for key, value in previous.items():
            spark.conf.unset(key) if value is None else spark.conf.set(key, value)
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id BETWEEN 100 AND 149")  # 4: replayed from JSON
    spark.sql(f"DELETE FROM delta.`{path}` WHERE g = 2 AND id > 3300")     # 5


@pytest.fixture(scope="module")
def tables(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    out = {}
    for kind, (props, confs, pattern) in KINDS.items():
        path = str(root / kind.replace(" ", "_"))
        _write(spark, path, props, confs)
        out[kind] = (path, pattern)
    return out


def _spark_counts(spark, path: str, version=None) -> tuple[int, int]:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()
    return reader.load(path).count(), int(detail.numFiles)


@pytest.mark.parametrize("kind", list(KINDS))
def test_snapshot_after_each_checkpoint_kind_counts_what_spark_counts(spark, tables, kind, monkeypatch):
    path, pattern = tables[kind]
    log = Path(path) / "_delta_log"
    assert any(re.match(pattern, f.name) for f in log.iterdir()), sorted(f.name for f in log.iterdir())
    if kind.startswith("v2"):
        assert len(list((log / "_sidecars").glob("*.parquet"))) >= 2
    live, files = _spark_counts(spark, path)
    assert read_snapshot(path, version=1).live_rows == _spark_counts(spark, path, 1)[0]
    replayed = []
    commit = replay._commit
    monkeypatch.setattr(replay, "_commit", lambda fs, log_dir, v: replayed.append(v) or commit(fs, log_dir, v))
    snap = read_snapshot(path)
    assert replayed == [4, 5]  # the checkpoint, then only the commits after it
    assert snap.version == 5 and len(snap.paths) == files
    assert snap.live_rows == live == snap.num_rows
    assert table_health(path).stats.deleted_rows == int(snap.rows.sum()) - live > 0
    if kind == "v2 json":
        return  # delta-rs 1.6.6 cannot open a table whose v2 checkpoint is JSON once earlier commits are gone
    for f in log.glob("*.json"):  # as log clean-up leaves it: nothing before the checkpoint to replay from
        if int(f.name[:20]) <= CHECKPOINT_EVERY:
            f.unlink()
    assert read_snapshot(path).live_rows == live
    with pytest.raises(DeltaLogError, match="version 2 cannot be read"):
        read_snapshot(path, version=2)  # older than the checkpoint: its commits were cleaned up


def _same_figures(fast, snap) -> None:
    """The log-only file table holds, file for file, the figures of the delta-rs snapshot; health agrees."""
    assert fast is not None and fast.version == snap.version and fast.partition_columns == snap.partition_columns
    paths = fast.actions.column("path").to_pylist()
    ours = dict(zip(paths, zip(fast.sizes.tolist(), fast.rows.tolist(), fast.deleted.tolist())))
    assert len(ours) == len(paths)
    assert ours == dict(zip(snap.paths, zip(snap.sizes.tolist(), snap.rows.tolist(), snap.deleted.tolist())))
    assert {k: sorted(paths[i] for i in v) for k, v in fast.groups.items()} == \
        {k: sorted(snap.paths[i] for i in v) for k, v in snap.groups.items()}
    assert list(fast.groups) == list(snap.groups)
    assert table_health(snap.uri, snapshot=fast) == table_health(snap.uri, snapshot=snap)


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_log_only_reader_agrees_with_the_snapshot_on_tables_with_vectors(tables, kind):
    path, _ = tables[kind]
    snap = read_snapshot(path)
    assert snap.deleted.sum() > 0
    _same_figures(read_file_table(path), snap)
    _same_figures(read_file_table(path, version=4), read_snapshot(path, version=4))


def test_the_log_only_reader_agrees_with_column_mapping_and_int_partitions(spark, tmp_path):
    path = str(tmp_path / "colmap")
    ids = spark.range(0, 900, numPartitions=3).selectExpr("id", "cast(id % 3 as int) as g", "id * 2 as k")
    ids.write.format("delta").partitionBy("g").option("delta.columnMapping.mode", "name") \
        .option("delta.enableDeletionVectors", "true").option("delta.checkpointInterval", "2").save(path)
    spark.sql(f"ALTER TABLE delta.`{path}` RENAME COLUMN g TO g_renamed")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id % 9 = 0")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id % 7 = 0")
    snap = read_snapshot(path)
    assert snap.partition_columns == ("g_renamed",) and snap.deleted.sum() > 0
    _same_figures(read_file_table(path), snap)


def test_the_log_only_reader_agrees_without_vectors_and_leaves_what_it_cannot_vouch_for(tmp_path):
    path = str(tmp_path / "t")
    for i in range(4):
        write_deltalake(path, pa.table({"id": np.arange(100) + 100 * i, "g": ["a", "b", None, "c%2Fd"] * 25}),
                        mode="append", partition_by=["g"])
    DeltaTable(path).create_checkpoint()
    write_deltalake(path, pa.table({"id": np.arange(10), "g": ["a"] * 10}), mode="append", partition_by=["g"])
    DeltaTable(path).delete("id < 50")  # removes and re-adds files after the checkpoint
    for version in (None, 2, 4):
        snap = read_snapshot(path, version=version)
        assert snap.deleted.sum() == 0
        _same_figures(read_file_table(path, version=version), snap)
    synthetic = write_synthetic_log(tmp_path / "s", np.arange(1, 3001) * 1000, [f"p{i % 7}" for i in range(3000)])
    _same_figures(read_file_table(str(synthetic)), read_snapshot(str(synthetic)))
    flags = str(tmp_path / "flags")  # a boolean partition: delta-rs' typed values, so delta-rs reads it
    write_deltalake(flags, pa.table({"id": [1, 2], "b": [True, False]}), partition_by=["b"])
    assert read_file_table(flags) is None and table_health(flags).stats.files == 2
    assert read_file_table(path, version=99) is None and read_file_table(str(tmp_path / "missing")) is None
    commit = Path(path) / "_delta_log" / f"{DeltaTable(path).version():020d}.json"
    commit.write_bytes(commit.read_bytes()[:50])  # truncated: delta-rs' reader names the damage
    assert read_file_table(path) is None


def test_a_corrupt_commit_is_a_named_error(tables):
    path, _ = tables["classic"]
    (Path(path) / "_delta_log" / f"{5:020d}.json").write_text('{"add": {"path": "x", "deletionVector"\n')
    with pytest.raises(DeltaLogError, match=f"{path}: the Delta log is damaged: commit 5 is truncated or corrupt"):
        read_snapshot(path)
