"""compact.py on real Delta tables with real Spark: window, idempotence, appenders, rivals, deletion vectors."""
from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from pipeline_opt.delta import read_snapshot
from pipeline_opt.tables.compact import compact_table
from pipeline_opt.tables.options import CompactOptions
from pipeline_opt.tables.settings import Window
from pipeline_opt.tables.verify import fingerprint

WINDOW = Window(100_000, 10**9)  # tiny test files: a 100 kB floor plays the role of 16 MB


def small_file_table(path, files=24, rows=2000, parts=("a", "b")):
    rng = np.random.default_rng(0)
    for i in range(files):
        ids = np.arange(rows) + i * rows
        write_deltalake(str(path), pa.table({"id": ids, "g": [parts[i % len(parts)]] * rows,
                                             "x": rng.random(rows)}), mode="append", partition_by=["g"])
    return str(path)


def ids_of(path):
    return np.sort(DeltaTable(path).to_pyarrow_table(columns=["id"]).column("id").to_numpy())


def test_compaction_lands_bytes_in_window_verifies_and_is_idempotent(spark, tmp_path):
    path = small_file_table(tmp_path / "t")
    before = fingerprint(spark, path)
    first = compact_table(spark, path, CompactOptions(WINDOW))
    assert first.files_removed == 24 and first.files_added == 2 and first.partitions_touched == 2
    assert first.verified and first.batches[0].verification.checks == 5
    assert first.batches[0].verification.scope == "touched"  # only the rewritten files were read
    assert first.rows_before == first.rows_after == 48000 and first.share_inside_after == 1.0
    after = fingerprint(spark, path)
    assert (after.rows, after.row_checksum, after.columns) == (before.rows, before.row_checksum, before.columns)
    second = compact_table(spark, path, CompactOptions(WINDOW))
    assert second.bytes_rewritten == 0 and second.batches == [] and second.plan.bytes_to_rewrite == 0


def test_batches_commit_one_by_one(spark, tmp_path):
    path = small_file_table(tmp_path / "t", files=12, parts=("a", "b", "c"))
    result = compact_table(spark, path, CompactOptions(WINDOW, batch_bytes=1))
    assert len(result.batches) == 3 and len({b.version for b in result.batches}) == 3
    assert all(b.verification.ok and b.verification.scope == "touched" for b in result.batches)
    assert read_snapshot(path).sizes.size == 3


@pytest.mark.slow
def test_blind_appender_loses_and_duplicates_nothing(spark, tmp_path):
    path = small_file_table(tmp_path / "t")
    errors, appended = [], []

    def append_loop():
        try:
            for i in range(6):
                ids = np.arange(100) + 10**6 + 100 * i
                write_deltalake(path, pa.table({"id": ids, "g": ["a"] * 100, "x": np.zeros(100)}), mode="append")
                appended.extend(ids.tolist())
        except Exception as e:  # noqa: BLE001 — the assertion below reports it
            errors.append(e)

    appender = threading.Thread(target=append_loop)
    result = compact_table(spark, path, CompactOptions(WINDOW),
                           progress=lambda m: appender.start() if m.startswith("planned") else None)
    appender.join()
    assert not errors and result.verified
    assert np.array_equal(ids_of(path), np.sort(np.concatenate([np.arange(48000), appended])))


@pytest.mark.slow
def test_two_compactions_at_once_one_wins_the_other_skips(spark, tmp_path):
    path = small_file_table(tmp_path / "t")
    barrier, results, errors = threading.Barrier(2, timeout=120), [], []

    def run():
        try:
            results.append(compact_table(spark, path, CompactOptions(WINDOW, backoff_s=0.1),
                                         progress=lambda m: barrier.wait() if ": optimize " in m and
                                         "attempt 1" in m else None))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    assert sum(r.files_removed for r in results) == 24  # every small file rewritten exactly once
    assert np.array_equal(ids_of(path), np.arange(48000))
    loser = min(results, key=lambda r: r.files_removed)
    assert loser.files_removed == 0 and (loser.conflicts or loser.batches[0].version is None)


def test_deletion_vector_heavy_files_are_rewritten(spark, tmp_path):
    path = str(tmp_path / "dv")
    spark.range(4000).selectExpr("id", "id % 2 as g").coalesce(1).write.format("delta") \
        .option("delta.enableDeletionVectors", "true").save(path)
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id % 4 = 0")
    assert read_snapshot(path).deleted.sum() == 1000
    result = compact_table(spark, path, CompactOptions(Window(1, 10**9), max_deleted_ratio=0.1))
    assert result.files_removed == 1 and result.verified and "purges" in result.plan.render()
    assert [b.partitions for b in result.batches] == [["(table)"], ["(table)"]]  # OPTIMIZE found nothing; PURGE did
    assert read_snapshot(path).deleted.sum() == 0 and spark.read.format("delta").load(path).count() == 3000


def test_path_with_quotes_semicolons_and_backticks_is_quoted_safely(spark, tmp_path):
    path = small_file_table(tmp_path / "we'ird; DROP `x`", files=8)
    result = compact_table(spark, path, CompactOptions(WINDOW))
    assert result.files_removed == 8 and result.verified
    assert np.array_equal(ids_of(path), np.arange(16000))


def test_dry_run_writes_nothing(spark, tmp_path):
    path = small_file_table(tmp_path / "t", files=8)
    result = compact_table(spark, path, CompactOptions(WINDOW), dry_run=True)
    assert result.plan.files_to_rewrite == 8 and result.batches == []
    assert DeltaTable(path).version() == 7


@pytest.mark.slow
def test_conflict_on_part_of_a_batch_retries_the_rest(spark, tmp_path):
    from pipeline_opt.tables.partition_filter import PartitionFilter

    path = small_file_table(tmp_path / "t")
    barrier, results, errors = threading.Barrier(2, timeout=120), {}, []

    def run(name, partition_filter):
        try:
            options = CompactOptions(WINDOW, PartitionFilter.parse(partition_filter) if partition_filter else None,
                                     backoff_s=0.1)
            results[name] = compact_table(spark, path, options, progress=lambda m: barrier.wait()
                                          if ": optimize " in m and "attempt 1" in m else None)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=a) for a in (("both", None), ("rival", "g = 'a'"))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    assert sum(r.files_removed for r in results.values()) == 24
    assert np.array_equal(ids_of(path), np.arange(48000)) and read_snapshot(path).sizes.size == 2
    both = results["both"]
    if both.conflicts:  # the rival committed first: the retry compacted what was left, with OPTIMIZE again
        assert both.batches[0].attempts >= 2 and both.batches[0].version is not None
        assert both.files_removed == 12 and both.verified
