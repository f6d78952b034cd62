"""verify.py: fingerprints, the GX suite, touched-files verification, the log check, restore and undo on real
Delta tables."""
from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from pipeline_opt.tables.verify import (
    VerificationError,
    check_or_restore,
    current_version,
    fingerprint,
    read_version,
    restore,
    touched_files,
    undo_rewrite,
    verify_rewrite,
)


def _table(spark, path, n=200, parts=4):
    df = spark.range(n).selectExpr("id", "cast(id % 7 as string) as `we'ird``col`",
                                   "case when id % 5 = 0 then null else cast(id * 1.5 as double) end as x",
                                   "map('k', id) as m")
    df.repartition(parts).write.format("delta").save(str(path))
    return str(path)


def test_fingerprint_ignores_layout_and_order(spark, tmp_path):
    path = _table(spark, tmp_path / "t")
    before = fingerprint(spark, path)
    read_version(spark, path).orderBy("x").coalesce(1).write.format("delta").mode("overwrite") \
        .option("dataChange", "false").save(path)
    after = fingerprint(spark, path)
    assert after.version == before.version + 1
    assert (after.rows, after.row_checksum, after.columns) == (before.rows, before.row_checksum, before.columns)
    assert before.columns[2].nulls == 40 and before.columns[1].name == "we'ird`col"


def test_verify_rewrite_passes_on_equal_data(spark, tmp_path):
    path = _table(spark, tmp_path / "t")
    read_version(spark, path).coalesce(1).write.format("delta").mode("overwrite").save(path)
    result = verify_rewrite(spark, path, 0, 1)
    assert result.ok and result.checks == 5 and not result.failures


@pytest.mark.parametrize("change", ["delete from {t} where id = 3", "update {t} set x = null where id = 1",
                                   "update {t} set x = x + 1 where id = 2"])
def test_verify_rewrite_catches_each_change(spark, tmp_path, change):
    path = _table(spark, tmp_path / "t")
    spark.sql(change.format(t=f"delta.`{path}`"))
    result = verify_rewrite(spark, path, fingerprint(spark, path, 0), 1)
    assert not result.ok and result.failures


def test_check_or_restore_restores_and_fails_loudly(spark, tmp_path):
    path = _table(spark, tmp_path / "t")
    spark.sql(f"delete from delta.`{path}` where id < 10")
    with pytest.raises(VerificationError, match="restored"):
        check_or_restore(spark, path, 0, 1)
    assert read_version(spark, path).count() == 200
    assert verify_rewrite(spark, path, 0, current_version(spark, path)).ok


def test_undo_keeps_rows_appended_after_the_bad_rewrite(spark, tmp_path):
    path = _table(spark, tmp_path / "t")
    spark.sql(f"delete from delta.`{path}` where id < 10")           # the "bad rewrite", version 1
    spark.range(1000, 1005).selectExpr("id", "'a' as `we'ird``col`", "cast(1.0 as double) as x", "map('k', id) as m") \
        .write.format("delta").mode("append").save(path)              # a blind append, version 2
    undo_rewrite(spark, path, 1)
    ids = sorted(r.id for r in read_version(spark, path).select("id").collect())
    assert ids == list(range(200)) + list(range(1000, 1005))


def test_restore_returns_new_version(spark, tmp_path):
    path = _table(spark, tmp_path / "t")
    spark.sql(f"delete from delta.`{path}` where id < 10")
    assert restore(spark, path, 0) == 2 and read_version(spark, path).count() == 200


def _partitioned(spark, path, n=400):
    """Two partitions, several files each: a rewrite of partition 'a' leaves partition 'b' untouched."""
    spark.range(n).selectExpr("id", "if(id % 2 = 0, 'a', 'b') as g", "cast(id * 1.5 as double) as x",
                              "case when id % 5 = 0 then null else cast(id % 7 as string) end as s") \
        .repartition(4).write.format("delta").partitionBy("g").save(str(path))
    return str(path)


def _rewrite_partition_a(spark, path, change=lambda df: df):
    """A rewrite commit (``dataChange`` false) of partition 'a' only, its rows passed through ``change``."""
    rows = change(read_version(spark, path).where("g = 'a'")).coalesce(1)
    rows.write.format("delta").mode("overwrite").option("replaceWhere", "g = 'a'") \
        .option("dataChange", "false").save(path)
    return current_version(spark, path)


def test_touched_verification_reads_only_the_rewritten_files(spark, tmp_path):
    path = _partitioned(spark, tmp_path / "t")
    version = _rewrite_partition_a(spark, path)
    scope = touched_files(path, version)
    assert not scope.problems and scope.removed and len(scope.added) == 1
    assert all(p.startswith("g=a/") for p in scope.removed + scope.added)  # partition b is not read
    assert scope.removed_rows == scope.added_rows == 200
    result = verify_rewrite(spark, path, version - 1, version)
    assert result.ok and result.scope == "touched" and result.checks == 5 and not result.failures
    # the touched rows alone fingerprint like the whole partition, both before and after
    whole = fingerprint(spark, path, version - 1, "g = 'a'")
    part = fingerprint(spark, path, version - 1, files=list(scope.removed))
    assert (part.rows, part.row_checksum, part.columns) == (whole.rows, whole.row_checksum, whole.columns) \
        and part.rows == 200


def test_rows_of_named_files_are_read_from_those_files_alone_with_deletion_vectors(spark, tmp_path):
    from pipeline_opt.delta import table_ref
    from pipeline_opt.tables.file_rows import file_rows

    path = _partitioned(spark, tmp_path / "t")
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = true)")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id % 10 = 4")  # deletion vectors on some files
    version = current_version(spark, path)
    name = "element_at(split(_metadata.file_path, '/'), -1)"
    names = sorted(r[0] for r in spark.sql(f"SELECT DISTINCT {name} FROM delta.`{path}`").collect())[:2]
    rows = file_rows(spark, table_ref(path), version, names)
    assert rows is not None and sorted(f.rsplit("/", 1)[-1] for f in rows.inputFiles()) == names  # no other file read
    assert rows.columns == ["id", "g", "x", "s"]  # the table's order, partition column included
    listed = ", ".join(f"'{n}'" for n in names)
    sql = spark.sql(f"SELECT * FROM delta.`{path}` VERSION AS OF {version} WHERE {name} IN ({listed})")
    assert sorted(map(tuple, rows.collect())) == sorted(map(tuple, sql.collect()))
    assert rows.where("id % 10 = 4").count() == 0 and rows.count() > 0  # deleted rows stay deleted
    assert file_rows(spark, table_ref(path), version, [*names, "part-not-in-this-version.parquet"]) is None


@pytest.mark.parametrize("change, named", [
    (lambda df: df.where("id != 4"), None),                                 # a row dropped
    (lambda df: df.union(df.where("id = 4")), None),                        # a row duplicated
    (lambda df: df.withColumn("x", F.expr("if(id = 4, x + 1, x)")), "x"),   # one value of one column altered
    (lambda df: df.withColumn("s", F.expr("if(id = 0, 'z', s)")), "s"),     # a null became a value
])
def test_touched_verification_catches_a_bad_rewrite(spark, tmp_path, change, named):
    path = _partitioned(spark, tmp_path / "t")
    version = _rewrite_partition_a(spark, path, change)
    result = verify_rewrite(spark, path, version - 1, version)
    assert not result.ok and result.scope == "touched" and result.engine != "delta_log"
    text = "; ".join(result.failures)
    if named is None:
        assert "expect_table_row_count_to_equal" in text
    else:  # the message names the changed column, and only that one
        checksums = next(f for f in result.failures if f.startswith("checksum differs"))
        assert f"{named}: " in checksums and "id: " not in checksums and "g: " not in checksums
    with pytest.raises(VerificationError, match="restored"):
        check_or_restore(spark, path, version - 1, version)
    assert verify_rewrite(spark, path, 0, current_version(spark, path), touched=False).ok


def test_rewrite_that_also_removed_an_untouched_file_fails(spark, tmp_path):
    """The commit removes partition b's files too, without re-adding their rows: caught by the row count."""
    path = _partitioned(spark, tmp_path / "t")
    read_version(spark, path).where("g = 'a'").coalesce(1).write.format("delta").mode("overwrite") \
        .option("dataChange", "false").save(path)  # no replaceWhere: every file removed, only 'a' rows added
    result = verify_rewrite(spark, path, 0, 1)
    assert not result.ok and result.scope == "touched"
    assert any("expect_table_row_count_to_equal {'value': 400}" in f for f in result.failures)


def test_snapshot_that_lost_an_untouched_file_fails_from_the_log(spark, tmp_path):
    """The commit's actions are a clean rewrite of partition 'a', but the snapshot at its version (here through a
    checkpoint that omits partition b's files) lost untouched files: the touched files alone fingerprint equal,
    and the log check fails verification before any scan; the undo brings the whole table back."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    path = _partitioned(spark, tmp_path / "t")
    version = _rewrite_partition_a(spark, path)
    DeltaTable(path).create_checkpoint()
    checkpoint = tmp_path / "t" / "_delta_log" / f"{version:020d}.checkpoint.parquet"
    actions = pq.read_table(checkpoint)
    add_path = pc.struct_field(actions.column("add"), "path")
    pq.write_table(actions.filter(pc.invert(pc.fill_null(pc.starts_with(add_path, "g=b/"), False))), checkpoint)
    assert read_version(spark, path, version).count() == 200  # partition b silently gone
    result = verify_rewrite(spark, path, version - 1, version)
    assert not result.ok and result.engine == "delta_log"
    assert "untouched file(s) gone" in result.failures[0]
    with pytest.raises(VerificationError, match="untouched"):
        check_or_restore(spark, path, version - 1, version)
    assert read_version(spark, path).count() == 400


def test_verification_falls_back_to_whole_versions_when_files_cannot_be_matched(spark, tmp_path):
    path = _table(spark, tmp_path / "t")
    spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS (extra int)")  # version 1 changes the schema
    result = verify_rewrite(spark, path, 0, 1)
    assert result.scope == "table" and not result.ok  # the column list differs
