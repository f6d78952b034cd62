"""Log-based VACUUM on real Delta tables written by Spark: it deletes what Delta's listing VACUUM deletes, keeps every
file a retained version needs, never touches files no commit mentions, and refuses what ``vacuum`` refuses."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from deltalake import write_deltalake

from pipeline_opt.delta.deletion_vectors import dv_file_path
from pipeline_opt.delta.log import commit_actions, commit_timestamp_ms
from pipeline_opt.errors import NotADeltaTableError, TableNotFoundError
from pipeline_opt.tables.vacuum import UnsafeRetentionError, vacuum
from pipeline_opt.tables.vacuum_log import vacuum_from_log

HOUR_MS = 3600 * 1000


def _build(spark, path: Path) -> dict[int, int]:
    """Versions: write, append, overwrite, DELETE (deletion vectors), OPTIMIZE, DELETE again; version → row count."""
    p = str(path)
    spark.range(0, 100, 1, 4).write.format("delta").save(p)
    spark.sql(f"ALTER TABLE delta.`{p}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    spark.range(100, 150, 1, 2).write.format("delta").mode("append").save(p)
    spark.range(0, 200, 1, 3).write.format("delta").mode("overwrite").save(p)
    spark.sql(f"DELETE FROM delta.`{p}` WHERE id % 7 = 0")
    spark.sql(f"DELETE FROM delta.`{p}` WHERE id % 5 = 0")  # the same files again: their first vectors go out of use
    spark.sql(f"OPTIMIZE delta.`{p}`")
    spark.sql(f"DELETE FROM delta.`{p}` WHERE id < 20")
    latest = spark.sql(f"DESCRIBE HISTORY delta.`{p}`").agg({"version": "max"}).first()[0]
    return {v: _rows(spark, path, v) for v in range(latest + 1)}


def _rows(spark, path: Path, version: int) -> int:
    return spark.sql(f"SELECT count(*) FROM delta.`{path}` VERSION AS OF {version}").first()[0]


def _relative(path: Path, paths) -> set[str]:
    root = str(path.resolve())
    return {p.split(root + "/", 1)[1] for p in paths}


def _live(path: Path, version: int) -> set[str]:
    """Relative paths of the data files and deletion-vector files that ``version`` reads (replayed from commits)."""
    fs, log = pafs.LocalFileSystem(), f"{path}/_delta_log"
    live: dict = {}
    for v in range(version + 1):
        for a in sorted(commit_actions(fs, log, v), key=lambda a: "add" in a):
            if "add" in a:
                live[a["add"]["path"]] = a["add"].get("deletionVector")
            elif "remove" in a:
                live.pop(a["remove"]["path"], None)
    vectors = {dv_file_path(str(path), dv) for dv in live.values() if dv and dv["storageType"] == "u"}
    return set(live) | _relative(path, vectors)


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    """One table built once; tests that change it work on their own copy."""
    path = tmp_path_factory.mktemp("vacuum_log") / "t"
    return path, _build(spark, path)


def _copy(built, tmp_path: Path) -> tuple[Path, dict[int, int]]:
    path, rows = built
    shutil.copytree(path, tmp_path / "t")
    return tmp_path / "t", rows


def test_log_dry_run_lists_exactly_what_delta_listing_vacuum_lists(spark, built, tmp_path):
    path, _ = _copy(built, tmp_path)
    from_log = vacuum_from_log(str(path), retention_hours=0, allow_unsafe=True)
    listing = vacuum(spark, str(path), retention_hours=0, allow_unsafe=True)
    assert 0 < listing.files <= 20, "the listing's sample must hold all its files for the comparison"
    assert _relative(path, from_log.sample) == _relative(path, listing.sample)
    assert (from_log.files, from_log.bytes) == (listing.files, listing.bytes)
    assert any("deletion_vector_" in p for p in from_log.sample), "the table must have a vector out of use"
    assert from_log.dry_run and from_log.already_gone == 0 and from_log.unknown_before_version is None
    assert all((path / rel).exists() for rel in _relative(path, from_log.sample)), "a dry run deleted files"


def test_versions_inside_the_retention_still_read_after_a_log_vacuum(spark, built, tmp_path):
    path, rows = _copy(built, tmp_path)
    fs, log = pafs.LocalFileSystem(), f"{path}/_delta_log"
    keep_from = 4  # the horizon is version 4's commit time, 7 days on
    now_ms = commit_timestamp_ms(fs, log, keep_from) + 168 * HOUR_MS
    needed = set().union(*(_live(path, v) for v in range(keep_from, max(rows) + 1)))
    done = vacuum_from_log(str(path), retention_hours=168, dry_run=False, now_ms=now_ms)
    assert not done.dry_run and done.files > 0 and done.oldest_retained_version == keep_from
    assert all((path / rel).exists() for rel in needed)
    assert not any((path / rel).exists() for rel in _live(path, 0) - needed), "version 0's own files were kept"
    for v in range(keep_from, max(rows) + 1):
        assert _rows(spark, path, v) == rows[v]
    again = vacuum_from_log(str(path), retention_hours=168, now_ms=now_ms)
    assert (again.files, again.already_gone) == (0, done.files)


def test_current_files_and_vectors_survive_a_zero_hour_log_vacuum(spark, built, tmp_path):
    path, rows = _copy(built, tmp_path)
    latest = max(rows)
    live = _live(path, latest)
    assert any("deletion_vector_" in rel for rel in live), "the current version must read deletion vectors"
    log = (path / "_delta_log").iterdir()
    readded = [a["add"]["path"] for f in log if f.suffix == ".json" for line in f.read_text().splitlines()
               if "add" in (a := json.loads(line)) and a["add"].get("deletionVector")]
    assert set(readded) & live, "a DELETE with deletion vectors re-adds its file under the same path"
    done = vacuum_from_log(str(path), retention_hours=0, dry_run=False, allow_unsafe=True)
    assert done.files > 0
    assert all((path / rel).exists() for rel in live)
    assert not _relative(path, done.sample) & live
    assert _rows(spark, path, latest) == rows[latest]
    assert vacuum(spark, str(path), retention_hours=0, allow_unsafe=True).files == 0, "Delta finds more to delete"


def test_a_file_no_commit_mentions_is_never_deleted(spark, built, tmp_path):
    path, rows = _copy(built, tmp_path)
    source = next(path / rel for rel in _live(path, max(rows)) if rel.endswith(".parquet"))
    uncommitted = path / "part-00000-concurrent-writer-not-yet-committed.snappy.parquet"
    shutil.copyfile(source, uncommitted)
    old = time.time() - 30 * 24 * 3600
    os.utime(uncommitted, (old, old))
    listing = vacuum(spark, str(path), retention_hours=0, allow_unsafe=True)
    assert uncommitted.name in {Path(p).name for p in listing.sample}, "Delta's listing VACUUM would delete it"
    done = vacuum_from_log(str(path), retention_hours=0, dry_run=False, allow_unsafe=True)
    assert done.files > 0 and uncommitted.exists()
    assert uncommitted.name not in {Path(p).name for p in done.sample}


def test_dry_run_deletes_nothing_and_unsafe_retention_is_refused(spark, built, tmp_path):
    path, _ = _copy(built, tmp_path)
    before = sorted(p.relative_to(path) for p in path.rglob("*"))
    dry = vacuum_from_log(str(path), retention_hours=0, allow_unsafe=True)
    assert dry.dry_run and dry.files > 0 and dry.bytes > 0
    assert sorted(p.relative_to(path) for p in path.rglob("*")) == before
    with pytest.raises(UnsafeRetentionError, match="167 hours.*--i-know-retention-is-unsafe"):
        vacuum_from_log(str(path), retention_hours=167, dry_run=False)
    assert sorted(p.relative_to(path) for p in path.rglob("*")) == before
    assert vacuum_from_log(str(path)).files == 0  # 7 days: everything was removed minutes ago


def test_non_delta_paths_raise_named_errors(tmp_path):
    with pytest.raises(TableNotFoundError, match="missing"):
        vacuum_from_log(str(tmp_path / "missing"))
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.parquet").write_bytes(b"PAR1")
    with pytest.raises(NotADeltaTableError, match="plain.*not a Delta table"):
        vacuum_from_log(str(tmp_path / "plain"))


def test_paths_outside_the_table_and_the_log_itself_are_never_deleted(tmp_path):
    table, outside = tmp_path / "t", tmp_path / "elsewhere.parquet"
    write_deltalake(str(table), pa.table({"id": pa.array([1, 2], pa.int64())}))
    outside.write_bytes(b"x")
    old = int(time.time() * 1000) - 30 * 24 * HOUR_MS
    removes = [f"file:{outside}", "../elsewhere.parquet", "_delta_log/00000000000000000000.json", "gone.parquet"]
    actions = [{"remove": {"path": p, "deletionTimestamp": old, "dataChange": True, "size": 1}} for p in removes]
    actions.append({"commitInfo": {"timestamp": old, "operation": "DELETE"}})
    (table / "_delta_log" / f"{1:020d}.json").write_text("\n".join(map(json.dumps, actions)) + "\n")
    done = vacuum_from_log(str(table), dry_run=False)
    assert outside.exists() and (table / "_delta_log" / f"{0:020d}.json").exists()
    assert (done.files, done.already_gone) == (0, 1)
    assert done.outside_table == sorted(removes[:3])


def test_after_log_cleanup_the_checkpoint_tombstones_are_used_and_the_gap_is_named(spark, tmp_path):
    path = tmp_path / "t"
    spark.range(0, 10, 1, 2).write.format("delta").option("delta.checkpointInterval", "2").save(str(path))
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.checkpointInterval' = '2')")
    for i in range(3):
        spark.range(0, 10 + i, 1, 2).write.format("delta").mode("overwrite").save(str(path))
    log = path / "_delta_log"
    checkpoint = max(int(f.name[:20]) for f in log.glob("*.checkpoint.parquet"))
    assert checkpoint >= 2
    for v in range(checkpoint):  # log cleanup: the commits before the checkpoint are gone
        (log / f"{v:020d}.json").unlink()
    from_log = vacuum_from_log(str(path), retention_hours=0, allow_unsafe=True)
    listing = vacuum(spark, str(path), retention_hours=0, allow_unsafe=True)
    assert from_log.unknown_before_version == checkpoint
    assert "log cleanup" in from_log.render()
    assert from_log.files > 0 and _relative(path, from_log.sample) == _relative(path, listing.sample)


def test_cli_vacuum_from_log_dry_run_needs_no_spark(built, tmp_path, capsys, monkeypatch):
    import pipeline_opt.spark
    from pipeline_opt.app.cli import main

    path, _ = _copy(built, tmp_path)
    monkeypatch.setattr(pipeline_opt.spark, "get_spark", lambda *a, **k: pytest.fail("Spark was started"))
    assert main(["vacuum", str(path), "--from-log", "--retention-hours", "0", "--i-know-retention-is-unsafe",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["dry_run"], out["mode"], out["retention_hours"]) == (True, "log", 0.0)
    assert out["files"] > 0 and all(Path(p).exists() for p in out["sample"])
