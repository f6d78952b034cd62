"""The in-process compaction engine (delta-rs) on real Delta tables written by Spark: same rows, verified in-process,
undone on mismatch, and chosen only where it is safe."""
from __future__ import annotations

import pytest

from pipeline_opt.delta import TableRef, read_snapshot, table_ref
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.tables.arrow_fingerprint import arrow_fingerprint
from pipeline_opt.tables.compact import compact_table
from pipeline_opt.tables.inprocess import check_or_undo, engine_for, verify_commit
from pipeline_opt.tables.options import CompactOptions
from pipeline_opt.tables.plan import plan_compaction
from pipeline_opt.tables.settings import TableDefaults, Window
from pipeline_opt.tables.verify import VerificationError, fingerprint, read_version

WINDOW = Window(100_000, 10**9)  # tiny test files: a 100 kB floor plays the role of 16 MB


def _spark_table(spark, path, files=16, dv=True, int_partition=False):
    """Small Spark files of every common type (nulls included) in two partitions (six with ``int_partition``: an
    integer partition column ``k`` too, whose log values are text), some rows deleted."""
    extra = ["cast(id % 3 as int) as k"] if int_partition else []
    (spark.range(0, 20_000, numPartitions=files)
     .selectExpr("id", "cast(id / 7 as decimal(15, 2)) as d", "timestamp_seconds(id * 3600) as ts",
                 "date_add(date'2020-01-01', cast(id % 900 as int)) as day",
                 "if(id % 5 = 0, null, concat('s', id % 97)) as s", "id * 0.5 as x", "id % 2 = 0 as b",
                 "if(id % 3 = 0, 'a', 'b') as g", *extra)
     .write.format("delta").partitionBy("g", *(["k"] if int_partition else []))
     .option("delta.enableDeletionVectors", str(dv).lower())
     .save(str(path)))
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id % 11 = 0")
    return str(path)


def test_delta_rs_engine_compacts_verifies_in_process_and_keeps_every_row(spark, tmp_path):
    path = _spark_table(spark, tmp_path / "t", files=6)
    assert read_snapshot(path).vectors  # the table carries deletion vectors into the rewrite
    before = fingerprint(spark, path)
    result = compact_table(spark, path, CompactOptions(WINDOW, engine="delta-rs"))
    assert result.engine == "delta-rs" and len(result.batches) == 2  # one commit per partition
    assert all(b.verification.ok and b.verification.scope == "touched" and b.verification.checks == 5
               for b in result.batches)
    assert result.files_removed == 2 * 6 and result.files_added == result.files_after == 2
    after = fingerprint(spark, path)  # Spark's own fingerprint agrees: not one row changed
    assert (after.rows, after.row_checksum, after.columns) == (before.rows, before.row_checksum, before.columns)
    assert after.rows == 20_000 - len(range(0, 20_000, 11))
    assert compact_table(spark, path, CompactOptions(WINDOW, engine="delta-rs")).batches == []


def test_delta_rs_engine_z_orders_in_process_verified_with_row_groups_readers_can_skip(spark, tmp_path):
    import pyarrow.parquet as pq

    from pipeline_opt.tables.inprocess import MIN_ROW_GROUP_ROWS

    path = str(tmp_path / "t")
    (spark.range(0, 120_000, numPartitions=8).selectExpr("id", "(id * 7919) % 1000 as k", "concat('s', id) as s")
     .write.format("delta").option("delta.enableDeletionVectors", "true").save(path))
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id % 13 = 0")
    before = fingerprint(spark, path)
    result = compact_table(spark, path, CompactOptions(Window(300_000, 10**9, target=600_000), zorder_by=["k"],
                                                       engine="auto"))
    assert result.engine == "delta-rs" and result.batches[0].verification.ok
    after = fingerprint(spark, path)
    assert (after.rows, after.row_checksum) == (before.rows, before.row_checksum)
    snap = read_snapshot(path)
    ranges, groups = [], 0
    for rel in snap.paths:
        f = pq.ParquetFile(f"{path}/{rel}")
        k = f.read(columns=["k"]).column("k").to_numpy()
        assert (k[1:] >= k[:-1]).all()  # one Z-order column: each file is sorted by it
        ranges.append((k.min(), k.max()))
        groups += f.num_row_groups
        assert all(f.metadata.row_group(i).num_rows <= MIN_ROW_GROUP_ROWS for i in range(f.num_row_groups))
    ranges.sort()
    assert len(ranges) >= 2 and all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:]))  # files do not overlap
    assert groups > len(ranges)  # row groups smaller than files: min/max skipping inside a file


def test_arrow_fingerprints_agree_across_writers_and_a_changed_or_lost_row_is_caught_and_undone(spark, tmp_path):
    path = _spark_table(spark, tmp_path / "t", files=8, dv=False)
    snap = read_snapshot(path)
    whole = arrow_fingerprint(snap, snap.paths, column_checksums=True)
    # The same rows rewritten by Spark into other files (dataChange = false): the same fingerprint.
    read_version(spark, path).repartition(3).write.format("delta").mode("overwrite") \
        .option("dataChange", "false").save(path)
    again = read_snapshot(path)
    assert arrow_fingerprint(again, again.paths, column_checksums=True) == \
        type(whole)(again.version, whole.rows, whole.row_checksum, whole.columns)
    # One value changed in partition b: the row checksum and that column's checksum move, the others stay.
    (read_version(spark, path).where("g = 'b'").selectExpr("*", "if(id = 1, 'changed', s) as s2").drop("s")
     .withColumnRenamed("s2", "s").select(*read_version(spark, path).columns)
     .write.format("delta").mode("overwrite").option("replaceWhere", "g = 'b'").option("dataChange", "false")
     .save(path))
    version = read_snapshot(path).version
    result = verify_commit(path, version)
    assert not result.ok and result.scope == "touched"
    checksums = next(f for f in result.failures if f.startswith("checksum differs"))
    assert "s: " in checksums and "id: " not in checksums and "d: " not in checksums
    with pytest.raises(VerificationError, match="restored"):
        check_or_undo(spark, table_ref(path), version)
    assert read_version(spark, path).where("s = 'changed'").count() == 0
    # A "rewrite" that dropped rows: caught by the row count, undone.
    rows = read_version(spark, path).count()
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id < 100")
    version = read_snapshot(path).version
    assert any("expect_table_row_count_to_equal" in f for f in verify_commit(path, version).failures)
    with pytest.raises(VerificationError):
        check_or_undo(spark, table_ref(path), version)
    assert read_version(spark, path).count() == rows


def test_auto_picks_delta_rs_only_where_it_is_safe(spark, tmp_path):
    path = _spark_table(spark, tmp_path / "t", files=4)
    ref, plan = table_ref(path), plan_compaction(path, WINDOW)
    assert engine_for("auto", ref, plan, clustered=False)[0] == "delta-rs"
    assert engine_for("auto", ref, plan, clustered=True) == ("spark", "liquid clustering is Spark's")
    assert engine_for("auto", TableRef(path, ("main", "sales", "orders")), plan, clustered=False)[0] == "spark"
    with pytest.raises(PipelineOptError, match="cannot compact with delta-rs: liquid clustering"):
        engine_for("delta-rs", ref, plan, clustered=True)
    with pytest.raises(PipelineOptError, match="expected one of auto, spark, delta-rs"):
        engine_for("duckdb", ref, plan, clustered=False)
    with pytest.raises(ValueError, match="defaults.engine: 'duckdb' must be one of"):
        TableDefaults(engine="duckdb").validate()
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableRowTracking' = 'true')")
    engine, why = engine_for("auto", ref, plan_compaction(path, WINDOW), clustered=False)
    assert engine == "spark" and "rowTracking" in why


def test_spark_commits_of_a_local_table_are_verified_in_process_and_others_by_spark(spark, tmp_path, monkeypatch):
    """Spark's OPTIMIZE of a local path table is verified by this process' reads (the Spark verifier is never
    called); a catalog table, object storage, a rewrite beyond one machine or a missing polars keep Spark's."""
    from pipeline_opt.tables import compact as compact_module
    from pipeline_opt.tables import inprocess

    path = _spark_table(spark, tmp_path / "t", files=6)
    before = fingerprint(spark, path)
    ref, plan = table_ref(path), plan_compaction(path, WINDOW)
    assert plan.bytes_to_rewrite > 0

    def spark_verifier(*args, **kwargs):
        raise AssertionError("Spark's verifier was called")

    monkeypatch.setattr(compact_module, "check_or_restore", spark_verifier)
    messages: list[str] = []
    result = compact_table(spark, path, CompactOptions(WINDOW, engine="spark"), progress=messages.append)
    assert result.engine == "spark" and result.verified and result.batches
    assert all(b.verification.ok and b.verification.scope == "touched" and b.verification.checks == 5
               for b in result.batches)
    assert "verifier of Spark's commits: in-process (a local path table this machine reads)" in messages
    after = fingerprint(spark, path)
    assert (after.rows, after.row_checksum) == (before.rows, before.row_checksum)

    assert inprocess.verifier_for("delta-rs", ref, plan)[0] == "in-process"
    assert inprocess.verifier_for("spark", TableRef(path, ("main", "sales", "orders")), plan)[0] == "spark"
    assert inprocess.verifier_for("spark", TableRef("s3://lake/t"), plan) == ("spark", "not on local storage")
    monkeypatch.setattr(inprocess, "ONE_MACHINE_BYTES", 0)
    assert inprocess.verifier_for("spark", ref, plan)[1].startswith("more than")
    monkeypatch.setattr(inprocess, "polars_installed", lambda: False)
    assert inprocess.verifier_for("spark", ref, plan)[0] == "spark"


def test_cli_compacts_a_local_table_in_process_without_starting_spark(tmp_path):
    """``compact --engine delta-rs`` on a path table: compacted, verified, and no JVM was started."""
    import json
    import subprocess
    import sys

    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    path = tmp_path / "t"
    for i in range(8):
        write_deltalake(str(path), pa.table({"id": np.arange(500) + 500 * i, "g": ["a", "b"] * 250}),
                        mode="append", partition_by=["g"])
    out = subprocess.run([sys.executable, "-m", "pipeline_opt.app.cli", "compact", str(path), "--engine", "delta-rs",
                          "--min-file-size", "100kB", "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["engine"] == "delta-rs" and result["verified"] and result["files_after"] == 2
    assert result["rows_before"] == result["rows_after"] == 4000
    assert "jdk.incubator" not in out.stderr and "SparkContext" not in out.stderr  # the JVM never started


@pytest.mark.parametrize("hasher", ["polars", "numpy"])
def test_both_hashers_see_equal_rows_alike_and_any_change(tmp_path, monkeypatch, hasher):
    """The same rows in other files and another order fingerprint alike; one changed value, a duplicated row or a
    value moved to another row does not (with polars' row hash and with the NumPy fallback). The text column is
    named like the hash columns polars adds beside the table's own, which must not shadow it."""
    import datetime
    import decimal

    import pyarrow as pa
    from deltalake import write_deltalake

    from pipeline_opt.tables import arrow_fingerprint as module

    if hasher == "numpy":
        monkeypatch.setattr(module, "_polars", lambda: None)
    n = 3000
    text = "_fingerprint_row"
    rows = pa.table({"id": list(range(n)), text: [None if i % 7 == 0 else f"v{i % 13}" for i in range(n)],
                     "d": [decimal.Decimal(i) / 4 for i in range(n)],
                     "t": [datetime.datetime(2024, 1, 1) + datetime.timedelta(minutes=i) for i in range(n)],
                     "x": [i * 0.5 for i in range(n)], "g": ["a", "b", "c"] * (n // 3)})

    def fingerprint_of(table, name, files):
        path = str(tmp_path / name)
        step = -(-table.num_rows // files)
        for k in range(files):
            write_deltalake(path, table.slice(k * step, step), mode="append", partition_by=["g"])
        snap = read_snapshot(path)
        fp = arrow_fingerprint(snap, snap.paths, column_checksums=True)
        return fp.rows, fp.row_checksum, [(c.name, c.type, c.nulls, c.checksum) for c in fp.columns]

    base = fingerprint_of(rows, "base", 4)
    assert dict((c[0], c[2]) for c in base[2])[text] == len(range(0, n, 7))
    assert fingerprint_of(rows.take(list(reversed(range(n)))), "reordered", 1) == base
    changed = rows.set_column(1, text, pa.array(["other"] + rows.column(text).to_pylist()[1:]))
    other = fingerprint_of(changed, "changed", 4)
    assert other[1] != base[1] and [c[3] for c in other[2]] != [c[3] for c in base[2]]
    assert {c[0] for c, b in zip(other[2], base[2]) if c != b} == {text}  # only that column's checksum moved
    duplicated = fingerprint_of(pa.concat_tables([rows, rows.slice(5, 1)]), "duplicated", 4)
    assert duplicated[:2] != base[:2]
    swapped = rows.set_column(0, "id", pa.array([1, 0] + list(range(2, n))))  # two ids trade rows
    assert fingerprint_of(swapped, "swapped", 4)[1] != base[1]


def test_the_removed_files_fingerprinted_during_the_rewrite_stand_in_only_when_they_match(tmp_path):
    """delta-rs rewrites while the files it bins are fingerprinted beside it; the verification uses that fingerprint
    only for a commit that removed exactly those files right after the version they were read at, and one that
    disagrees with the added files is never the verdict: the second pass reads the removed files again."""
    from concurrent.futures import Future

    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    from pipeline_opt.tables.inprocess import Ahead, optimize_partition
    from pipeline_opt.tables.verify import touched_files

    path = str(tmp_path / "t")
    for i in range(6):
        write_deltalake(path, pa.table({"id": np.arange(300) + 300 * i, "g": ["a", "b", "c"] * 100}), mode="append",
                        partition_by=["g"])
    part = next(p for p in plan_compaction(path, WINDOW).to_rewrite if p.values == {"g": "b"})
    commit = optimize_partition(path, part, 64 * 2**20, "run-1", fingerprint_ahead=True)
    assert commit.ahead is not None and commit.ahead.version == commit.version - 1
    assert commit.ahead.paths == set(touched_files(path, commit.version).removed)  # the prediction held
    assert verify_commit(path, commit.version, commit.ahead).ok
    wrong: Future = Future()
    wrong.set_result(arrow_fingerprint(read_snapshot(path, 0), read_snapshot(path, 0).paths))  # other rows
    for stale in (Ahead(commit.ahead.version - 1, commit.ahead.paths, wrong),   # read at another version
                  Ahead(commit.ahead.version, frozenset(list(commit.ahead.paths)[1:]), wrong),  # other files
                  Ahead(commit.ahead.version, commit.ahead.paths, wrong)):  # matching, but it disagrees
        assert verify_commit(path, commit.version, stale).ok  # the removed files are read again: the right verdict


def test_files_polars_scans_and_files_arrow_reads_fingerprint_alike(spark, tmp_path, monkeypatch):
    """polars scans plain local files itself and hashes Arrow-read files (deletion vectors, fallbacks) with the same
    expression: a table whose files come from Spark, from delta-rs (string views) and from before a column was
    added, partitioned by text and by an integer, fingerprints the same by either route, column checksums
    included."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from pipeline_opt.tables import arrow_fingerprint as module

    path = _spark_table(spark, tmp_path / "t", files=4, dv=False, int_partition=True)
    rows = read_version(spark, path).limit(50).toPandas()
    write_deltalake(path, pa.Table.from_pandas(rows, schema=read_snapshot(path).schema, preserve_index=False),
                    mode="append", partition_by=["g", "k"])
    read_version(spark, path).limit(30).selectExpr("*", "concat(s, '!') as extra").write.format("delta") \
        .mode("append").option("mergeSchema", "true").save(path)
    snap = read_snapshot(path)
    assert not snap.vectors and "extra" in snap.columns
    read_by_arrow: list = []
    tables = module._tables
    monkeypatch.setattr(module, "_tables", lambda snapshot, paths: read_by_arrow.extend(paths) or tables(snapshot,
                                                                                                          paths))
    by_polars = arrow_fingerprint(snap, snap.paths, column_checksums=True)
    assert read_by_arrow == []  # every file was scanned by polars (no fallback)
    monkeypatch.setattr(module, "_scanned_by_polars", lambda fs, f: False)
    assert arrow_fingerprint(snap, snap.paths, column_checksums=True) == by_polars
    assert sorted(read_by_arrow) == sorted(snap.paths)
    assert by_polars.rows == read_version(spark, path).count()
