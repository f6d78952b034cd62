"""The demo lakehouse: real TPC-H tables as Delta, lineitem/orders arriving as many small commits."""
import pytest
from chispa import assert_df_equality

from pipeline_opt.app.demo.lakehouse import DIMENSIONS, generate
from pipeline_opt.errors import PipelineOptError
from tests.app.conftest import TINY


@pytest.fixture
def lakehouse(tiny_lakehouse):
    return tiny_lakehouse


def test_every_table_is_delta_with_tpch_row_counts(lakehouse, spark):
    root, result = lakehouse
    assert set(result.tables) == {"lineitem", "orders", *DIMENSIONS}
    assert result.tables["orders"]["rows"] == 15_000 and result.tables["nation"]["rows"] == 25
    for name in result.tables:
        assert (root / name / "_delta_log").is_dir()
    lineitem = spark.read.format("delta").load(str(root / "lineitem"))
    # the late cancellations are deleted: none of their order keys remain
    assert lineitem.where("l_orderkey % 97 = 0").count() == 0
    assert lineitem.count() == result.tables["lineitem"]["rows"]


def test_streamed_tables_arrive_in_many_partitioned_commits(lakehouse, spark):
    root, result = lakehouse
    assert result.tables["lineitem"]["commits"] == 4 + 1  # appends + the cancellation DELETE
    assert result.tables["lineitem"]["files"] >= 4 * 3
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{root / 'lineitem'}`").first()
    assert detail.partitionColumns == ["l_shipyear"]
    history = spark.sql(f"DESCRIBE HISTORY delta.`{root / 'orders'}`").collect()
    assert sorted(r.operation for r in history) == ["WRITE", "WRITE"]


def test_deterministic_rows_per_commit(lakehouse, spark, tmp_path):
    root, _ = lakehouse
    again = tmp_path / "again"
    generate(again, 0.01, spark=spark, progress=lambda m: None, ingest=TINY)
    for v in range(2):
        a = spark.read.format("delta").option("versionAsOf", v).load(str(root / "orders"))
        b = spark.read.format("delta").option("versionAsOf", v).load(str(again / "orders"))
        assert_df_equality(a, b, ignore_row_order=True)


def test_refuses_a_folder_that_already_holds_tables(lakehouse):
    root, _ = lakehouse
    with pytest.raises(PipelineOptError, match="already holds"):
        generate(root, 0.01, ingest=TINY)
