"""A rewrite that fails before its commit: the error names the files it wrote; committed files are never named."""
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

from pipeline_opt.delta import read_snapshot
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.tables import compact
from pipeline_opt.tables.leftovers import uncommitted_files
from pipeline_opt.tables.options import CompactOptions
from pipeline_opt.tables.settings import Window


def _table(path: Path) -> str:
    for i in range(6):
        write_deltalake(path, pa.table({"id": list(range(i * 10, i * 10 + 10)), "g": ["a", "b"] * 5}),
                        mode="append", partition_by=["g"])
    return str(path)


def _stray(table: str, folder: str, name: str) -> str:
    pq.write_table(pa.table({"id": [1]}), f"{table}/{folder}/{name}")
    return f"{folder}/{name}"


def test_only_new_files_of_the_partitions_that_no_version_references(tmp_path):
    table = _table(tmp_path / "t")
    since = time.time()
    stray = _stray(table, "g=a", "part-99999-uncommitted.c000.snappy.parquet")
    _stray(table, "g=b", "part-99998-other-partition.c000.snappy.parquet")
    assert uncommitted_files(table, [{"g": "a"}], since) == [stray]
    write_deltalake(table, pa.table({"id": [100], "g": ["a"]}), mode="append", partition_by=["g"])  # committed
    assert uncommitted_files(table, [{"g": "a"}], since) == [stray]
    assert uncommitted_files(table, [{"g": "a"}], time.time() + 60) == []  # older than the batch: not its files


def test_a_failed_batch_names_its_uncommitted_files(spark, tmp_path, monkeypatch):
    table = _table(tmp_path / "t")
    before = sorted(read_snapshot(table).paths)

    def fail_after_writing(session, ref, kind, batch, plan, options):
        _stray(table, "g=a", "part-00000-written-then-failed.c000.snappy.parquet")
        raise RuntimeError("executor lost")

    monkeypatch.setattr(compact, "_optimize", fail_after_writing)
    options = CompactOptions(Window(10**6, 10**9))
    with pytest.raises(PipelineOptError) as failed:
        compact.compact_table(spark, table, options)
    message = str(failed.value)
    assert "executor lost" in message and "nothing was committed" in message
    assert "g=a/part-00000-written-then-failed.c000.snappy.parquet" in message and "VACUUM" in message
    assert sorted(read_snapshot(table).paths) == before


def test_a_failed_batch_without_leftovers_raises_its_own_error(spark, tmp_path, monkeypatch):
    table = _table(tmp_path / "t")

    def fail(session, ref, kind, batch, plan, options):
        raise RuntimeError("executor lost")

    monkeypatch.setattr(compact, "_optimize", fail)
    with pytest.raises(RuntimeError, match="executor lost"):
        compact.compact_table(spark, table, CompactOptions(Window(10**6, 10**9)))
