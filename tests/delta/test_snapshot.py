"""The one Delta-log reader on tables Spark wrote: every checkpoint kind Delta writes (classic, multi-part, v2 with
sidecars in JSON or Parquet) followed by JSON commits, deletion vectors counted as Spark counts them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline_opt.delta import log as replay
from pipeline_opt.delta import read_snapshot
from pipeline_opt.errors import DeltaLogError
from pipeline_opt.tables.health import table_health

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


def test_a_corrupt_commit_is_a_named_error(tables):
    path, _ = tables["classic"]
    (Path(path) / "_delta_log" / f"{5:020d}.json").write_text('{"add": {"path": "x", "deletionVector"\n')
    with pytest.raises(DeltaLogError, match=f"{path}: the Delta log is damaged: commit 5 is truncated or corrupt"):
        read_snapshot(path)
