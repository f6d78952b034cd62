"""verify.py: fingerprints, the GX suite, restore and undo on real Delta tables."""
from __future__ import annotations

import pytest

from pipeline_opt.tables.verify import (
    VerificationError,
    check_or_restore,
    current_version,
    fingerprint,
    read_version,
    restore,
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
