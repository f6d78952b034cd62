"""The table jobs over a config: what each job does for several tables, asserted once (through ``run_job``, the
call every entry point makes)."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from pipeline_opt.app.jobs import run_job
from pipeline_opt.errors import ConfigError
from pipeline_opt.tables.vacuum import UnsafeRetentionError


def write_table(path: Path, appends: int, rows: int) -> str:
    for i in range(appends):
        data = pa.table({"id": pa.array(range(i * rows, (i + 1) * rows), pa.int64()),
                         "text": pa.array([f"row {j} " * 8 for j in range(rows)])})
        write_deltalake(str(path), data, mode="append")
    return str(path)


def write_config(root: Path, tables: dict[str, str], extra: str = "") -> str:
    conf = root / "tables.yml"
    conf.write_text("defaults:\n  min_file_size: 8KB\n  max_file_size: 1GB\n  min_bin_files: 4\ntables:\n" + "".join(
        f"  - name: {n}\n    path: {p}\n{extra}" for n, p in tables.items()))
    return str(conf)


def test_compact_with_a_config_compacts_scheduled_tables_and_skips_healthy_ones(spark, tmp_path):
    conf = write_config(tmp_path, {"small": write_table(tmp_path / "small", 10, 10),
                                   "healthy": write_table(tmp_path / "healthy", 1, 5000)})
    rows = {r["table"]: r for r in run_job("compact", {"config": conf}, spark=spark).to_list()}
    assert "healthy" in rows["healthy"]["skipped"]
    small = rows["small"]
    assert small["files_removed"] == 10 and small["files_added"] == 1 and small["verified"]
    assert small["rows_before"] == small["rows_after"] == 100
    assert len(DeltaTable(str(tmp_path / "small")).file_uris()) == 1
    everything = run_job("compact", {"config": conf, "all": True, "dry_run": True})
    assert [r["table"] for r in everything.to_list()] == ["small", "healthy"]


def test_vacuum_with_a_config_refuses_unsafe_retention_and_unknown_tables(spark, tmp_path):
    conf = write_config(tmp_path, {"t": write_table(tmp_path / "t", 2, 10)}, "    vacuum_retention_hours: 24\n")
    with pytest.raises(UnsafeRetentionError, match="24 hours"):
        run_job("vacuum", {"config": conf, "execute": True}, spark=spark)
    with pytest.raises(ConfigError, match="unknown table 'nope'"):
        run_job("vacuum", {"config": conf, "table": ["nope"]}, spark=spark)
    (row,) = run_job("vacuum", {"config": conf, "retention_hours": 168}, spark=spark).to_list()
    assert (row["table"], row["dry_run"], row["files"]) == ("t", True, 0)


def test_health_with_a_config_agrees_with_delta(spark, tmp_path):
    conf = write_config(tmp_path, {"a": write_table(tmp_path / "a", 3, 10), "b": write_table(tmp_path / "b", 1, 10)})
    result = run_job("health", {"config": conf, "table": ["b", "a"]})
    assert [name for name, _ in result] == ["b", "a"]
    for name, health in result:
        detail = spark.sql(f"DESCRIBE DETAIL delta.`{tmp_path / name}`").first()
        assert health.stats.files == detail.numFiles and health.min_size == 8000
    assert [r["stats"]["rows"] for r in result.to_list()] == [10, 30]


def test_a_path_and_a_config_are_exclusive(tmp_path):
    conf = write_config(tmp_path, {"t": write_table(tmp_path / "t", 1, 10)})
    with pytest.raises(Exception, match="not both"):
        run_job("health", {"path": str(tmp_path / "t"), "config": conf})
    with pytest.raises(Exception, match="--table needs --config"):
        run_job("health", {"path": str(tmp_path / "t"), "table": ["t"]})
    with pytest.raises(Exception, match="unknown parameter 'tabel'"):
        run_job("health", {"config": conf, "tabel": ["t"]})
