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
    assert result.tables["lineitem"]["commits"] == 4 + 2  # appends, deletion vectors on, the cancellation DELETE
    assert result.tables["lineitem"]["files"] >= 4 * 3
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{root / 'lineitem'}`").first()
    assert detail.partitionColumns == ["l_shipyear"]
    history = spark.sql(f"DESCRIBE HISTORY delta.`{root / 'orders'}`").collect()
    assert sorted(r.operation for r in history) == ["CREATE TABLE", "WRITE"]  # the first commit creates it
    stats = spark.read.format("delta").load(str(root / "lineitem")).where("l_shipdate < date '1993-01-01'")
    assert stats.count() > 0 and {r.l_shipyear for r in stats.select("l_shipyear").distinct().collect()} == {1992}


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


def test_refuses_a_folder_holding_other_files_and_keeps_them(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(PipelineOptError, match="not an empty folder or a demo lakehouse"):
        generate(folder, 0.01, ingest=TINY)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_fresh_demo_never_deletes_a_folder_the_demo_did_not_make(tmp_path):
    from pipeline_opt.app.demo.run import run_demo

    folder = tmp_path / "mine"
    (folder / "lineitem" / "_delta_log").mkdir(parents=True)
    with pytest.raises(PipelineOptError, match="not a demo lakehouse"):
        run_demo(folder, 0.01, fresh=True)
    assert (folder / "lineitem" / "_delta_log").is_dir()


def test_generated_lakehouse_carries_the_marker(lakehouse):
    from pipeline_opt.app.demo.lakehouse import is_demo_lakehouse

    root, _ = lakehouse
    assert is_demo_lakehouse(root)
