"""Every table command by catalog name: managed and external Delta tables in the session catalog (the test session's
warehouse is a temp folder), a name that needs backquotes, and one clear error for a missing name, a view, a
non-Delta table, a name beside --base-dir and a name that is also a folder.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from pipeline_opt.app.cli import main
from pipeline_opt.app.jobs import run_job
from pipeline_opt.delta import read_snapshot, resolve_table
from pipeline_opt.errors import NotADeltaTableError, PipelineOptError, TableNotFoundError

DB, ODD_DB = "po_names", "order"
# Both parts need backquotes: a reserved word and a name that starts with a digit (Spark's own session catalog takes
# only letters, digits and '_'; Unity Catalog names with '-' or '.' go through the same quoting, see the grammar test)
MANAGED = f"`{ODD_DB}`.`2024_events`"
EXTERNAL = f"{DB}.ext"
SMALL = ["--min-file-size", "100KB"]


def _append_small_files(spark, name: str, batches: int = 3, rows: int = 800) -> None:
    for i in range(batches):
        spark.range(i * rows, (i + 1) * rows, numPartitions=2).selectExpr(
            "id", "cast(id % 3 as string) as g", "cast(id * 0.5 as double) as x") \
            .write.format("delta").mode("append").saveAsTable(name)


@pytest.fixture
def catalog(spark, tmp_path):
    """A fresh managed table, an external one over many small files, a view and a Parquet table."""
    # Each test's databases live in its own folder: a managed table re-created at a path an earlier test used would
    # meet Delta's cached log of the dropped one (the session caches logs by path) and read files that are gone.
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {DB} LOCATION '{tmp_path / 'db'}'")
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{ODD_DB}` LOCATION '{tmp_path / 'odd_db'}'")
    _append_small_files(spark, MANAGED)
    ext = tmp_path / "ext"
    for i in range(4):
        write_deltalake(str(ext), pa.table({"id": np.arange(600) + 600 * i, "g": ["a", "b"] * 300,
                                            "x": np.arange(600) * 0.5}), mode="append")
    spark.sql(f"CREATE TABLE {EXTERNAL} USING delta LOCATION '{ext}'")
    spark.sql(f"CREATE VIEW {DB}.v AS SELECT * FROM {EXTERNAL}")
    spark.sql(f"CREATE TABLE {DB}.pq (id BIGINT) USING parquet")
    yield {"external": str(ext)}
    spark.sql(f"DROP DATABASE {DB} CASCADE")
    spark.sql(f"DROP DATABASE `{ODD_DB}` CASCADE")


def _rows(spark, name: str) -> list[int]:
    return sorted(r.id for r in spark.sql(f"SELECT id FROM {name}").collect())


def test_names_resolve_once_to_their_location(spark, catalog):
    managed, external = resolve_table(spark, MANAGED), resolve_table(spark, EXTERNAL)
    assert managed.name == (ODD_DB, "2024_events") and managed.sql == MANAGED and managed.label == "order.`2024_events`"
    assert managed.location.endswith("/2024_events") and read_snapshot(managed.location).live_rows == 2400
    assert external.location == catalog["external"] and external.sql == "`po_names`.`ext`"


def test_health_and_schedule_by_name(spark, catalog, tmp_path):
    health = run_job("health", {"path": MANAGED, "min_file_size": "100KB"}, spark=spark)
    assert health.path == "order.`2024_events`" and health.stats.rows == 2400
    assert health.stats.files_below == health.stats.files
    conf = tmp_path / "tables.yml"
    conf.write_text(f"tables:\n  - name: managed\n    path: \"{MANAGED}\"\n  - name: ext\n    path: {EXTERNAL}\n"
                    "defaults:\n  min_file_size: 100KB\n")
    ranked = run_job("schedule", {"config": str(conf)}, spark=spark)
    assert set(ranked.to_compact) == {"managed", "ext"}


@pytest.mark.parametrize("name", [MANAGED, EXTERNAL])
def test_compact_by_name_verifies_and_keeps_every_row(spark, catalog, name):
    before = _rows(spark, name)
    result = run_job("compact", {"path": name, "min_file_size": "100KB"}, spark=spark)
    assert result.path == resolve_table(spark, name).label and result.verified and result.files_removed > 1
    assert _rows(spark, name) == before
    ops = [r.operation for r in spark.sql(f"DESCRIBE HISTORY {name} LIMIT 1").collect()]
    assert ops == ["OPTIMIZE"]


def test_vacuum_by_name_dry_run_then_execute(spark, catalog):
    run_job("compact", {"path": EXTERNAL, "min_file_size": "100KB"}, spark=spark)
    dry = run_job("vacuum", {"path": EXTERNAL, "retention_hours": 0, "allow_unsafe": True}, spark=spark)
    assert dry.dry_run and dry.files == 4 and dry.path == EXTERNAL
    done = run_job("vacuum", {"path": EXTERNAL, "retention_hours": 0, "allow_unsafe": True, "execute": True},
                   spark=spark)
    assert done.files == 4 and _rows(spark, EXTERNAL) == list(range(2400))


@pytest.mark.parametrize("external", [False, True], ids=["managed", "external"])
def test_partitioning_apply_by_name_keeps_the_table_where_it_is(spark, catalog, tmp_path, external):
    name = f"`{ODD_DB}`.`part_{'ext' if external else 'managed'}`"
    at = f" LOCATION '{tmp_path / 'part'}'" if external else ""
    spark.sql(f"CREATE TABLE {name} USING delta PARTITIONED BY (g){at} AS SELECT * FROM {EXTERNAL}")
    where = resolve_table(spark, name).location
    advice = run_job("partitioning", {"path": name, "apply": True}, spark=spark)
    assert advice.path == resolve_table(spark, name).label and advice.current_partition_by == ["g"]
    assert advice.partition_by == []
    assert advice.applied["changed"] and advice.applied["verified_checks"] == 5
    detail = spark.sql(f"DESCRIBE DETAIL {name}").collect()[0]
    assert list(detail["partitionColumns"]) == [] and resolve_table(spark, name).location == where
    assert where == str(tmp_path / "part") if external else where.endswith("/part_managed")
    assert _rows(spark, name) == list(range(2400))


def test_stream_and_fingerprint_by_name(spark, catalog):
    streamed = run_job("stream", {"path": MANAGED, "columns": "id,x", "batch_size": 256}, spark=spark)
    assert streamed["rows_delivered"] == 2400
    fp = run_job("fingerprint", {"path": EXTERNAL}, spark=spark)
    assert fp.rows == 2400 and [c.name for c in fp.columns] == ["id", "g", "x"]


def test_train_table_by_name(spark, catalog, tmp_path):
    cfg = tmp_path / "training.yml"
    cfg.write_text("table: unused\nfeatures: [id]\nlabel: x\nbatch_size: 128\nsteps: 2\ndevice: cpu\n"
                   "precision: fp32\nmodel:\n  kind: mlp\n  hidden: 8\n  layers: 1\n")
    out = run_job("train", {"config": str(cfg), "table": EXTERNAL}, spark=spark)
    assert out["steps"] == 2 and out["world_size"] == 1


@pytest.mark.parametrize("name, error, message", [
    (f"{DB}.missing", TableNotFoundError, "po_names.missing: no such table"),
    ("no_such_db.t", TableNotFoundError, "no such table"),
    (f"{DB}.v", NotADeltaTableError, "a view, not a Delta table"),
    (f"{DB}.pq", NotADeltaTableError, "a parquet table, not a Delta table"),
])
def test_missing_names_views_and_other_formats_are_one_clear_error(spark, catalog, capsys, name, error, message):
    with pytest.raises(error, match=message):
        resolve_table(spark, name)
    for argv in (["health", name], ["compact", name], ["vacuum", name], ["partitioning", name], ["stream", name]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)


def test_name_beside_base_dir_is_refused_and_says_why(tmp_path, capsys):
    conf = tmp_path / "tables.yml"
    conf.write_text(f"tables:\n  - name: e\n    path: {EXTERNAL}\n")
    for argv in (["health", "--config", str(conf), "--base-dir", "/lake"],
                 ["vacuum", "--config", str(conf), "--base-dir", "/lake"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "catalog table name" in err and "--base-dir /lake" in err and len(err.splitlines()) == 1


def test_a_name_that_is_also_a_folder_is_ambiguous(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.v2" / "_delta_log").mkdir(parents=True)
    with pytest.raises(PipelineOptError, match=r"write ./data.v2 for the folder, or `data`.`v2` for the table"):
        resolve_table(object(), "data.v2")


@pytest.mark.parametrize("text, parts", [
    ("main.sales.events", ("main", "sales", "events")), ("db.t", ("db", "t")),
    ("`my-cat`.`sales`.`we.ird``t`", ("my-cat", "sales", "we.ird`t")), ("`events`", ("events",)),
    ("lineitem", None), ("lakehouse/lineitem", None), ("s3://b/t", None), ("a.b.c.d", None), ("a..b", None),
    ("main.sales-x.events", None), ("a.`b/c`", ("a", "b/c")), ("/abs/x.y", None)])
def test_name_grammar_and_quoting(text, parts):
    from pipeline_opt.sql import quote_name, split_name

    assert split_name(text) == parts
    if parts:
        assert split_name(quote_name(parts)) == parts  # quoting round-trips, whatever a part holds


def test_json_output_names_the_table(spark, catalog, capsys):
    assert main(["health", EXTERNAL, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["path"] == EXTERNAL and out["stats"]["rows"] == 2400


@pytest.mark.slow
def test_cli_finds_names_across_processes_with_a_persistent_metastore(tmp_path):
    """The CLI is a process of its own: with PIPELINE_OPT_METASTORE its catalog outlives the process that made it."""
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "PYSPARK_GATEWAY_PORT")}
    env["PIPELINE_OPT_METASTORE"] = str(tmp_path / "metastore")
    make = ("from pipeline_opt.spark import get_spark; s = get_spark(); s.sql('CREATE DATABASE po'); "
            "s.range(50).write.format('delta').saveAsTable('po.t')")
    subprocess.run([sys.executable, "-c", make], env=env, cwd=tmp_path, check=True, capture_output=True, timeout=900)

    # One CLI process is enough to show the catalog outlived its maker (a view's refusal is tested in process)
    health = subprocess.run([sys.executable, "-m", "pipeline_opt.app.cli", "health", "po.t", "--json"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert health.returncode == 0, health.stderr[-1000:]
    assert json.loads(health.stdout)["path"] == "po.t" and json.loads(health.stdout)["stats"]["rows"] == 50
    assert (tmp_path / "metastore" / "warehouse" / "po.db" / "t" / "_delta_log").is_dir()
