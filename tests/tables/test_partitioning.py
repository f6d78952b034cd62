"""The partitioning advisor's rules on tables built here, and the verified one-commit re-layout."""
from __future__ import annotations

import json

import pytest

from pipeline_opt.app.cli import main
from pipeline_opt.tables.partitioning import MAX_CLUSTER_COLUMNS, advise, max_keys
from pipeline_opt.tables.predicates import filter_counts, read_predicate_log
from pipeline_opt.tables.relayout import apply_layout
from pipeline_opt.tables.verify import VerificationError, fingerprint

QUERIES = [
    "SELECT * FROM t WHERE customer = 17 AND region = 'east'",
    "SELECT sum(amount) FROM t WHERE customer BETWEEN 5 AND 9",
    "WHERE `day` >= DATE'2024-01-03' AND customer = 3",
    "where region = 'customer' and day = DATE'2024-01-01'",  # 'customer' inside a literal is not a reference
    "SELECT count(*) FROM t WHERE amount > 100 AND sku = 4 AND store = 2",
]


def _build(spark, path, partition_by=(), props=None):
    df = spark.range(3000).selectExpr(
        "id", "id % 12 AS part", "id % 200 AS customer", "CASE id % 3 WHEN 0 THEN 'east' ELSE 'west' END AS region",
        "date_add(DATE'2024-01-01', CAST(id % 30 AS INT)) AS day", "CAST(id * 1.5 AS DOUBLE) AS amount",
        "id % 77 AS sku", "id % 11 AS store", "concat('note-', id) AS note")
    writer = df.repartition(8).write.format("delta")
    for k, v in (props or {}).items():
        writer = writer.option(k, v)
    writer.partitionBy(*partition_by).save(str(path))
    return str(path)


def test_filter_counts_ignore_literals_and_count_once_per_query():
    counts = filter_counts(QUERIES, ["customer", "region", "day", "amount", "sku", "store", "note"])
    assert counts == {"customer": 3, "region": 2, "day": 2, "amount": 1, "sku": 1, "store": 1}


def test_filter_counts_stop_where_the_where_clause_ends():
    # grouping, HAVING and ordering columns filter no rows, so they earn no clustering key (TPC-H Q1's shape)
    queries = ["SELECT note, count(*) FROM t WHERE sku < 9 GROUP BY note, region HAVING count(*) > 1 "
               "ORDER BY day LIMIT 5",
               "select region, sum(amount) from t where day <= date '1998-09-02'\n group by region order by region"]
    assert filter_counts(queries, ["sku", "note", "region", "day", "amount"]) == {"sku": 1, "day": 1}


def test_small_partitioned_table_is_advised_to_drop_partitioning_and_apply_is_one_verified_commit(spark, tmp_path):
    path = _build(spark, tmp_path / "t", partition_by=["part"], props={"delta.dataSkippingNumIndexedCols": "5"})
    advice = advise(spark, path)
    assert advice.current_partition_by == ["part"] and advice.partition_by == [] and advice.cluster_by == []
    assert advice.layout == "none" and advice.changes_layout
    assert any("under 1 TB" in r for r in advice.reasons)
    assert any("12 partitions" in r and "remove it" in r for r in advice.reasons)
    assert any("no query log" in r for r in advice.reasons)

    version = advice.version
    totals = ["count(*) AS n", "sum(id) AS ids", "sum(amount) AS amount"]
    before = spark.read.format("delta").load(path).selectExpr(*totals).collect()[0]
    applied = apply_layout(spark, path, advice)
    assert applied["changed"] and applied["commits"] == 1 and applied["verified_checks"] > 0
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").collect()[0]
    assert list(detail["partitionColumns"]) == []
    assert detail["properties"].get("delta.dataSkippingNumIndexedCols") == "5"  # user properties survive
    assert spark.read.format("delta").load(path).selectExpr(*totals).collect()[0] == before
    assert spark.read.format("delta").option("versionAsOf", version).load(path).count() == 3000
    assert advise(spark, path).changes_layout is False  # idempotent: the advised layout is now the layout


def test_query_log_ranks_clustering_columns_with_statistics_at_most_four(spark, tmp_path):
    # Statistics only for the first 6 columns: sku (7th) and beyond have none.
    path = _build(spark, tmp_path / "t", props={"delta.dataSkippingNumIndexedCols": "6"})
    queries = QUERIES + ["WHERE note = 'x' AND customer = 1", "WHERE region = 'east' AND amount < 3",
                         "WHERE part = 3 AND amount > 7"]
    advice = advise(spark, path, queries, files_after=4**MAX_CLUSTER_COLUMNS)  # files enough for every key
    assert advice.partition_by == [] and advice.layout == "liquid"
    assert advice.cluster_by == ["customer", "amount", "region", "day"]  # by filter count, then cardinality
    assert len(advice.cluster_by) == MAX_CLUSTER_COLUMNS
    # The same log on the files this small table really compacts into (one): its most filtered column alone.
    small = advise(spark, path, queries)
    assert small.cluster_by == ["customer"]
    assert any(r.startswith("amount left out: the table lays out in about 1 file, which give 1 key")
               for r in small.reasons)
    assert [max_keys(n) for n in (1, 15, 16, 63, 64, 255, 256, 10**6)] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert any(r.startswith("note is filtered") and "no file statistics" in r for r in advice.reasons)
    assert any(r.startswith("part left out") for r in advice.reasons)
    facts = {c.name: c for c in advice.columns}
    assert facts["customer"].filtered == 4 and 180 <= facts["customer"].distinct <= 220
    assert facts["sku"].has_stats is False and facts["id"].has_stats is True


def test_large_table_rules_partition_by_a_filtered_column_and_zorder_the_rest(spark, tmp_path):
    path = _build(spark, tmp_path / "t")
    size = advise(spark, path).bytes
    # Floors scaled to this table: it counts as "large", and a partition must hold >= size/12 bytes.
    advice = advise(spark, path, QUERIES, min_table_bytes=size // 2, min_partition_bytes=size // 12)
    # region: 2 values, filtered by 2 queries; day (30 values) makes too-small partitions
    assert advice.partition_by == ["region"]
    assert advice.zorder_by[0] == "customer" and "region" not in advice.zorder_by and advice.cluster_by == []
    assert advice.layout == "partition+zorder"
    assert any("Z-order" in r for r in advice.reasons)


@pytest.mark.slow
def test_relayout_that_changes_data_is_restored(spark, tmp_path):
    path = _build(spark, tmp_path / "t", partition_by=["part"])
    advice = advise(spark, path)
    before = fingerprint(spark, path)
    lossy = spark.read.format("delta").load(path).where("id <> 7")
    with pytest.raises(VerificationError, match="restored"):
        apply_layout(spark, path, advice, source=lossy)
    now = fingerprint(spark, path)
    assert (now.rows, now.row_checksum) == (before.rows, before.row_checksum)
    assert now.version == before.version + 2  # the bad rewrite, then the restore


def test_predicate_log_formats_and_errors(tmp_path):
    log = tmp_path / "q.log"
    log.write_text('# comment\n\n{"predicate": "a = 1"}\n{"query": "SELECT 1 WHERE b = 2"}\nc > 3\n')
    assert read_predicate_log(log) == ["a = 1", "SELECT 1 WHERE b = 2", "c > 3"]
    log.write_text('{"other": 1}\n')
    with pytest.raises(Exception, match="q.log:1"):
        read_predicate_log(log)


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    assert main(["partitioning", str(tmp_path / "plain")]) == 2
    assert main(["partitioning", str(tmp_path / "plain"), "--predicates", str(tmp_path / "nope.log")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not a Delta table" in err[0] and "nope.log" in err[1]


def test_cli_json(spark, tmp_path, capsys):
    path = _build(spark, tmp_path / "t")
    (tmp_path / "q.log").write_text("\n".join(QUERIES))
    assert main(["partitioning", path, "--predicates", str(tmp_path / "q.log"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cluster_by"][0] == "customer" and out["queries"] == len(QUERIES) and out["applied"] is None
