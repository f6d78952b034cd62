"""undo.py: the undo of a bad rewrite on real Delta tables, with appends racing it (delta-rs in a thread)."""
from __future__ import annotations

import json
import os
import threading
import time
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from pipeline_opt.delta import resolve_table
from pipeline_opt.delta.actions import commit_actions, latest_version, live_adds
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.tables import undo
from pipeline_opt.tables.undo import UNDO_OPERATION, UndoConflictError, undo_rewrite
from pipeline_opt.tables.verify import fingerprint

N = 300


def _table(spark, path, n=N, parts=4, props=None):
    spark.range(n).selectExpr("id", "cast(id % 7 as string) as g", "cast(id * 1.5 as double) as x") \
        .repartition(parts).write.format("delta").save(str(path))
    if props:
        pairs = ", ".join(f"'{k}' = '{v}'" for k, v in props.items())
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({pairs})")
    return str(path)


def _bad_rewrite(spark, path, drop_below=20, files=2):
    """A 'compaction' (dataChange=false overwrite) that loses the rows with id < drop_below; its version."""
    spark.sql(f"SELECT * FROM delta.`{path}` WHERE id >= {drop_below}").repartition(files).write.format("delta") \
        .mode("overwrite").option("dataChange", "false").save(path)
    return _latest(path)


def _latest(path):
    return latest_version(undo._local_fs(), f"{path}/_delta_log")


def _commit(path, version):
    return commit_actions(undo._local_fs(), f"{path}/_delta_log", version)


def _ids(spark, path, version=None):
    at = "" if version is None else f" VERSION AS OF {version}"
    return sorted(r.id for r in spark.sql(f"SELECT id FROM delta.`{path}`{at}").collect())


def _last_operation(spark, path):
    return spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").collect()[0]


def test_optimize_undone_in_one_commit(spark, tmp_path):
    path = _table(spark, tmp_path / "t")
    spark.sql(f"OPTIMIZE delta.`{path}`")
    before = fingerprint(spark, path, 0)
    assert undo_rewrite(spark, path, 1) == 2
    after = fingerprint(spark, path)  # Spark sees the hand-written commit
    assert (after.version, after.rows, after.row_checksum, after.columns) == (2, N, before.row_checksum,
                                                                               before.columns)
    log = f"{path}/_delta_log"
    assert set(live_adds(undo._local_fs(), log, 2)) == set(live_adds(undo._local_fs(), log, 0))
    last = _last_operation(spark, path)
    assert last["operation"] == UNDO_OPERATION and last["operationParameters"]["rewriteVersion"] == "1"
    assert "undo of rewrite version 1" in last["userMetadata"]
    assert not [n for n in os.listdir(log) if n.endswith(".tmp")]
    spark.range(5).selectExpr("id + 1000 as id", "'a' as g", "cast(1.0 as double) as x").write.format("delta") \
        .mode("append").save(path)  # Spark commits on top of it
    assert _ids(spark, path) == list(range(N)) + list(range(1000, 1005))


def test_bad_rewrite_with_deletion_vectors_comes_back(spark, tmp_path):
    path = _table(spark, tmp_path / "t", props={"delta.enableDeletionVectors": "true"})
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id % 10 = 3")  # deletion vectors, version 2
    assert any("deletionVector" in a.get("add", {}) for a in _commit(path, 2))
    expected = _ids(spark, path)
    rewrite = _bad_rewrite(spark, path)
    assert len(_ids(spark, path)) < len(expected)
    version = undo_rewrite(spark, path, rewrite)
    assert version == rewrite + 1 and _ids(spark, path) == expected
    readds = [a["add"] for a in _commit(path, version) if "add" in a]
    assert readds and all(a["dataChange"] and a["stats"] for a in readds)
    assert sum("deletionVector" in a for a in readds) == 4
    assert fingerprint(spark, path).row_checksum == fingerprint(spark, path, rewrite - 1).row_checksum


def test_appends_after_the_rewrite_are_kept(spark, tmp_path):
    path = _table(spark, tmp_path / "t")
    rewrite = _bad_rewrite(spark, path)
    for i in range(2):
        spark.range(1000 + 10 * i, 1010 + 10 * i).selectExpr("id", "'a' as g", "cast(1.0 as double) as x") \
            .write.format("delta").mode("append").save(path)
    assert undo_rewrite(spark, path, rewrite) == rewrite + 3
    assert _ids(spark, path) == list(range(N)) + list(range(1000, 1020))


class _Appender(threading.Thread):
    """Blind appends of 3-row batches with distinct ids through delta-rs, as fast as it can (or every ``pause``)."""

    def __init__(self, path, pause=0.0):
        super().__init__(daemon=True)
        self.path, self.pause, self.ids, self.errors = path, pause, [], []
        self.stop, self.lock, self.next_id = threading.Event(), threading.Lock(), 10_000

    def run(self):
        while not self.stop.is_set():
            with self.lock:  # held by a test that wants no append for a while
                self.append_one()
            time.sleep(self.pause)

    def append_one(self):
        ids = np.arange(self.next_id, self.next_id + 3)
        self.next_id += 3
        try:
            write_deltalake(self.path, pa.table({"id": ids, "g": ["r"] * 3, "x": ids * 0.5}), mode="append")
        except Exception as e:  # a commit delta-rs gave up on: its rows are not in the table
            self.errors.append(repr(e))
            return
        self.ids.extend(int(i) for i in ids)

    def batches(self):
        return len(self.ids) // 3

    def wait_for(self, batches, timeout=120):
        deadline = time.monotonic() + timeout
        while self.batches() < batches and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.batches() >= batches, self.errors[-3:]


def _appends_around(path, first, undo_version):
    """(delta-rs appends committed after ``first`` and before ``undo_version``, those after it)."""
    before = after = 0
    for v in range(first + 1, _latest(path) + 1):
        info = next((a["commitInfo"] for a in _commit(path, v) if "commitInfo" in a), {})
        if str(info.get("clientVersion", "")).startswith("delta-rs"):
            before, after = (before + 1, after) if v < undo_version else (before, after + 1)
    return before, after


def test_racing_appender_loses_nothing(spark, tmp_path, monkeypatch):
    path = _table(spark, tmp_path / "t")
    rewrite = _bad_rewrite(spark, path)
    lost_races = []
    put, listing = undo._put_if_absent, undo.latest_version

    slow = [0.3, 0.3]

    def slow_listing(fs, log_dir):  # widen the window between reading V and writing V+1 twice, so appends win it
        v = listing(fs, log_dir)
        time.sleep(slow.pop() if slow else 0)
        return v

    def counted_put(log_dir, version, text):
        won = put(log_dir, version, text)
        if not won:
            lost_races.append(version)
        return won

    monkeypatch.setattr(undo, "latest_version", slow_listing)
    monkeypatch.setattr(undo, "_put_if_absent", counted_put)
    appender = _Appender(path)
    appender.start()
    try:
        appender.wait_for(3)
        version = undo_rewrite(spark, path, rewrite)
        done = appender.batches()
        appender.wait_for(done + 3)
    finally:
        appender.stop.set()
        appender.join(60)
    before, after = _appends_around(path, rewrite, version)
    print(f"race: {before} appends before the undo commit {version}, {after} after, {len(lost_races)} lost races")
    assert before >= 3 and after >= 3 and lost_races
    ops = [next(a["commitInfo"]["operation"] for a in _commit(path, v) if "commitInfo" in a)
           for v in range(rewrite + 1, _latest(path) + 1)]
    assert ops.count(UNDO_OPERATION) == 1
    ids = _ids(spark, path)
    assert len(ids) == N + len(appender.ids) and ids == sorted(list(range(N)) + appender.ids)


def test_later_commit_on_the_rewrites_files_refuses(spark, tmp_path):
    path = _table(spark, tmp_path / "t")
    rewrite = _bad_rewrite(spark, path)
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id = 100")  # removes one of the rewrite's files
    names = sorted(os.listdir(f"{path}/_delta_log"))
    with pytest.raises(UndoConflictError, match=f"version {rewrite + 1} changed files.*restore version {rewrite - 1}"):
        undo_rewrite(spark, path, rewrite)
    assert sorted(os.listdir(f"{path}/_delta_log")) == names and _latest(path) == rewrite + 1


def test_metadata_change_after_the_rewrite_refuses(spark, tmp_path):
    path = _table(spark, tmp_path / "t")
    rewrite = _bad_rewrite(spark, path)
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('pipeline_opt.test' = '1')")
    with pytest.raises(UndoConflictError, match="metaData"):
        undo_rewrite(spark, path, rewrite)
    assert _latest(path) == rewrite + 1


def test_fallback_restore_keeps_racing_appends(spark, tmp_path, monkeypatch):
    """RESTORE commits with no conflict resolution (any concurrent commit fails it), so the appender holds off
    during it; the append that lands between reading the latest version and the RESTORE — the one the old undo
    lost — is made deterministic."""
    path = _table(spark, tmp_path / "t")
    rewrite = _bad_rewrite(spark, path)
    appender = _Appender(path, pause=0.05)
    listing, window = undo.latest_version, []

    def listing_then_append(fs, log_dir):
        v = listing(fs, log_dir)
        if not window:  # the undo's first look at the log: hold the appender, land one append behind its back
            appender.lock.acquire()
            appender.append_one()
            window.append(listing(fs, log_dir))
        return v

    monkeypatch.setattr(undo, "latest_version", listing_then_append)
    appender.start()
    try:
        appender.wait_for(3)
        try:
            version = undo_rewrite(spark, path, rewrite, method="restore")
        finally:
            appender.lock.release()
        done = appender.batches()
        appender.wait_for(done + 3)
    finally:
        appender.stop.set()
        appender.join(60)
    restores = [v for v in range(rewrite + 1, _latest(path) + 1)
                if any(a.get("commitInfo", {}).get("operation") == "RESTORE" for a in _commit(path, v))]
    assert len(restores) == 1
    before, after = _appends_around(path, rewrite, restores[0])
    print(f"fallback race: {before} appends before RESTORE {restores[0]}, {after} after; undo ended at {version}")
    assert before >= 3 and after >= 3 and window[0] < restores[0]
    ids = _ids(spark, path)
    assert len(ids) == N + len(appender.ids) and ids == sorted(list(range(N)) + appender.ids)


def test_unsafe_writer_feature_falls_back_to_restore(spark, tmp_path):
    path = _table(spark, tmp_path / "t", props={"delta.enableRowTracking": "true"})
    rewrite = _bad_rewrite(spark, path)
    with pytest.raises(PipelineOptError, match="rowTracking"):
        undo_rewrite(spark, path, rewrite, method="commit")
    spark.range(1000, 1003).selectExpr("id", "'a' as g", "cast(1.0 as double) as x").write.format("delta") \
        .mode("append").save(path)
    undo_rewrite(spark, path, rewrite)
    assert _ids(spark, path) == list(range(N)) + [1000, 1001, 1002]
    ops = [r["operation"] for r in spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 2").collect()]
    assert ops == ["WRITE", "RESTORE"]


def test_append_only_table_is_undone_without_data_change(spark, tmp_path):
    path = _table(spark, tmp_path / "t", props={"delta.appendOnly": "true"})
    spark.sql(f"OPTIMIZE delta.`{path}`")  # Delta refuses a dataChange=false overwrite here; OPTIMIZE is allowed
    rewrite = _latest(path)
    with pytest.raises(UndoConflictError, match="appendOnly"):
        undo_rewrite(spark, path, rewrite, method="restore")
    version = undo_rewrite(spark, path, rewrite)
    assert _ids(spark, path) == list(range(N))
    files = [a.get("add") or a.get("remove") for a in _commit(path, version) if "commitInfo" not in a]
    assert files and not any(f["dataChange"] for f in files)


def test_named_table_is_undone_at_its_location(spark, tmp_path):
    spark.sql(f"CREATE DATABASE IF NOT EXISTS po_undo LOCATION '{tmp_path / 'db'}'")
    try:
        spark.range(N).selectExpr("id", "cast(id % 7 as string) as g").repartition(3).write.format("delta") \
            .saveAsTable("po_undo.t")
        ref = resolve_table(spark, "po_undo.t")
        spark.sql("SELECT * FROM po_undo.t WHERE id >= 50").coalesce(1).write.format("delta").mode("overwrite") \
            .option("dataChange", "false").saveAsTable("po_undo.t")
        rewrite = _latest(ref.location)
        assert undo_rewrite(spark, ref, rewrite) == rewrite + 1
        assert sorted(r.id for r in spark.sql("SELECT id FROM po_undo.t").collect()) == list(range(N))
        info = json.loads(open(f"{ref.location}/_delta_log/{rewrite + 1:020d}.json").readline())["commitInfo"]
        assert info["operation"] == UNDO_OPERATION
    finally:
        spark.sql("DROP DATABASE po_undo CASCADE")


def test_live_adds_replays_a_checkpoint_whole(tmp_path):
    """The raw add actions come back whole from a checkpoint (maps as dicts, stats, null partitions kept)."""
    from deltalake import DeltaTable

    path = str(tmp_path / "t")
    for i in range(3):
        write_deltalake(path, pa.table({"id": np.arange(10) + 10 * i, "p": ["a", None] * 5}), mode="append",
                        partition_by=["p"])
    DeltaTable(path).create_checkpoint()
    write_deltalake(path, pa.table({"id": np.arange(5) + 100, "p": ["b"] * 5}), mode="append", partition_by=["p"])
    log = f"{path}/_delta_log"
    assert any(n.endswith(".checkpoint.parquet") for n in os.listdir(log))
    adds = live_adds(undo._local_fs(), log, _latest(path))
    from_json = {}
    for v in range(_latest(path) + 1):
        from_json.update({unquote(a["add"]["path"]): a["add"] for a in _commit(path, v) if "add" in a})
    assert set(adds) == set(from_json) and len(adds) == 7
    for p, add in adds.items():
        want = from_json[p]
        assert (add["size"], add["partitionValues"], json.loads(add["stats"])) == \
            (want["size"], want["partitionValues"], json.loads(want["stats"]))
    assert {None, "a", "b"} == {a["partitionValues"]["p"] for a in adds.values()}
    only = sorted(adds)[:2]
    assert set(live_adds(undo._local_fs(), log, _latest(path), only)) == set(only)
