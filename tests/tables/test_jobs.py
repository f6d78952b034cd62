"""The spark-submit jobs: run in-process on the test session, and one through a real ``spark-submit``."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from pipeline_opt.spark import delta_artifacts

ROOT = Path(__file__).resolve().parents[2]


def _job(name: str):
    spec = importlib.util.spec_from_file_location(f"job_{name}", ROOT / "jobs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(path: Path, appends: int, rows: int) -> str:
    for i in range(appends):
        data = pa.table({"id": pa.array(range(i * rows, (i + 1) * rows), pa.int64()),
                         "text": pa.array([f"row {j} " * 8 for j in range(rows)])})
        write_deltalake(str(path), data, mode="append")
    return str(path)


def _config(root: Path, tables: dict[str, str], extra: str = "") -> str:
    conf = root / "tables.yml"
    conf.write_text("defaults:\n  min_file_size: 8KB\n  max_file_size: 1GB\n  min_bin_files: 4\ntables:\n" + "".join(
        f"  - name: {n}\n    path: {p}\n{extra}" for n, p in tables.items()))
    return str(conf)


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_compact_job_compacts_scheduled_tables_and_skips_healthy_ones(spark, tmp_path, capsys):
    conf = _config(tmp_path, {"small": _table(tmp_path / "small", 10, 10),
                              "healthy": _table(tmp_path / "healthy", 1, 5000)}, )
    assert _job("compact_tables").main(["--config", conf]) == 0
    rows = {r["table"]: r for r in _lines(capsys.readouterr().out)}
    assert "healthy" in rows["healthy"]["skipped"]
    small = rows["small"]
    assert small["files_removed"] == 10 and small["files_added"] == 1 and small["verified"]
    assert small["rows_before"] == small["rows_after"] == 100
    assert len(DeltaTable(str(tmp_path / "small")).file_uris()) == 1


def test_vacuum_job_refuses_unsafe_config_retention_and_unknown_tables(spark, tmp_path, capsys):
    conf = _config(tmp_path, {"t": _table(tmp_path / "t", 2, 10)}, "    vacuum_retention_hours: 24\n")
    job = _job("vacuum_tables")
    assert job.main(["--config", conf, "--execute"]) == 2
    assert job.main(["--config", conf, "--table", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "24 hours" in err[0] and "unknown table 'nope'" in err[1]
    assert job.main(["--config", conf, "--retention-hours", "168"]) == 0
    (row,) = _lines(capsys.readouterr().out)
    assert (row["table"], row["dry_run"], row["files"]) == ("t", True, 0)


def test_health_job_in_process(spark, tmp_path, capsys):
    conf = _config(tmp_path, {"t": _table(tmp_path / "t", 3, 10)})
    assert _job("health_report").main(["--config", conf]) == 0
    (row,) = _lines(capsys.readouterr().out)
    assert (row["files"], row["delta_num_files"], row["rows"], row["healthy"]) == (3, 3, 30, False)


@pytest.mark.slow
def test_health_report_through_spark_submit(tmp_path):
    """Real spark-submit: its own JVM, Delta's jars on the command line, the package as a --py-files zip."""
    conf = _config(tmp_path, {"t": _table(tmp_path / "lake" / "t", 4, 10)})
    bundle = tmp_path / "pipeline_opt.zip"
    with zipfile.ZipFile(bundle, "w") as z:
        for f in (ROOT / "pipeline_opt").rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                z.write(f, f.relative_to(ROOT))
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    cmd = [str(venv_bin / "spark-submit"), "--master", "local[1]", "--packages", ",".join(delta_artifacts()),
           "--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
           "--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
           "--conf", "spark.ui.enabled=false", "--py-files", str(bundle),
           str(ROOT / "jobs" / "health_report.py"), "--config", conf]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = _lines(done.stdout)
    assert (row["table"], row["files"], row["delta_num_files"], row["rows"]) == ("t", 4, 4, 40)
