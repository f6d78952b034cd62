"""The ways a job starts — Databricks notebooks, spark-submit, the job scripts in-process — give what ``run_job``
gives for the same parameters. Notebooks run locally on the real Spark session with a small ``dbutils.widgets``
stand-in; one job goes through a real ``spark-submit``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from pipeline_opt.app.jobs import run_job
from pipeline_opt.app.notebook import frame
from pipeline_opt.app.submit import submit
from pipeline_opt.spark import delta_artifacts

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
TIMINGS = ("duration_s", "verify_s", "seconds")  # wall-clock facts differ between two runs of the same job


class Widgets:
    """The part of ``dbutils.widgets`` the notebooks use; ``values`` plays the job's parameters."""

    def __init__(self, values: dict[str, str]):
        self.values, self.defined = dict(values), {}

    def text(self, name, default, label=None):
        self.defined[name] = self.values.get(name, default)

    def dropdown(self, name, default, choices, label=None):
        value = self.values.get(name, default)
        if default not in choices or value not in choices:
            raise ValueError(f"widget {name}: {value!r} not in {choices}")
        self.defined[name] = value

    def get(self, name):
        if name not in self.defined:
            raise KeyError(f"InputWidgetNotDefined: {name}")
        return self.defined[name]


class DbUtils:
    def __init__(self, values):
        self.widgets = Widgets(values)


def cells(path: Path) -> list[str]:
    text = path.read_text()
    assert text.startswith(HEADER + "\n"), f"{path.name}: not Databricks source format"
    body = text[len(HEADER) + 1:]
    return ["\n".join(line for line in cell.splitlines() if not line.startswith("# MAGIC"))
            for cell in body.split(f"\n{SEPARATOR}\n")]


def run_notebook(name: str, spark, **widgets) -> dict:
    shown = []
    namespace = {"spark": spark, "dbutils": DbUtils(widgets), "display": shown.append}
    for n, code in enumerate(cells(ROOT / "notebooks" / f"{name}.py")):
        exec(compile(code, f"{name}.py[cell {n}]", "exec"), namespace)
    namespace["shown"] = shown
    return namespace


def write_table(path: Path, appends: int = 6, rows: int = 30) -> str:
    for i in range(appends):
        write_deltalake(str(path), pa.table({"id": pa.array(range(i * rows, (i + 1) * rows), pa.int64()),
                                             "part": pa.array([j % 3 for j in range(rows)], pa.int64())}),
                        mode="append", partition_by=["part"])
    return str(path)


def write_config(root: Path, path: str) -> str:
    conf = root / "tables.yml"
    conf.write_text(f"defaults:\n  min_file_size: 8KB\n  min_bin_files: 4\ntables:\n  - name: t\n    path: {path}\n")
    return str(conf)


def without_timings(df):
    return df.drop(columns=[c for c in df.columns if c.split(".")[-1] in TIMINGS]).to_dict("records")


def test_every_notebook_is_databricks_source_with_widgets_and_a_job():
    assert {p.stem for p in NOTEBOOKS} == {"health_report", "compact_tables", "vacuum_tables", "partitioning_advisor"}
    for p in NOTEBOOKS:
        source = p.read_text()
        assert SEPARATOR in source and "job_widgets(dbutils" in source and "run_job(" in source
        for n, code in enumerate(cells(p)):
            compile(code, f"{p.name}[{n}]", "exec")


@pytest.mark.parametrize("notebook, job, widgets", [
    ("health_report", "health", {}),
    ("vacuum_tables", "vacuum", {}),
    ("partitioning_advisor", "partitioning", {"predicates": "{log}"}),
])
def test_read_only_notebooks_give_what_the_job_gives(spark, tmp_path, notebook, job, widgets):
    path = write_table(tmp_path / "t")
    (tmp_path / "q.log").write_text("WHERE id = 3\nWHERE id > 7 AND part = 1\n")
    values = {k: v.format(log=tmp_path / "q.log") for k, v in widgets.items()}
    params = {"config": write_config(tmp_path, path)} if job != "partitioning" else {"path": path}
    (shown,) = run_notebook(notebook, spark, **params, **values)["shown"]
    assert without_timings(shown) == without_timings(frame(run_job(job, {**params, **values}, spark=spark)))
    assert len(shown) == 1


def test_compaction_notebook_compacts_as_the_job_does(spark, tmp_path):
    by_notebook, by_job = write_table(tmp_path / "a" / "t"), write_table(tmp_path / "b" / "t")
    (shown,) = run_notebook("compact_tables", spark, config=write_config(tmp_path / "a", by_notebook))["shown"]
    expected = frame(run_job("compact", {"config": write_config(tmp_path / "b", by_job)}, spark=spark))
    facts = ["table", "files_removed", "files_added", "rows_before", "rows_after", "verified", "planned_bytes"]
    assert shown[facts].to_dict("records") == expected[facts].to_dict("records")
    assert shown.iloc[0]["files_removed"] == 18 and shown.iloc[0]["files_added"] == 3
    assert len(DeltaTable(by_notebook).file_uris()) == 3


def test_a_notebook_with_unsafe_widgets_refuses_like_the_job(spark, tmp_path):
    from pipeline_opt.tables.vacuum import UnsafeRetentionError

    conf = write_config(tmp_path, write_table(tmp_path / "t"))
    with pytest.raises(UnsafeRetentionError):
        run_notebook("vacuum_tables", spark, config=conf, retention_hours="1", execute="true")


def test_job_scripts_print_json_lines_and_one_line_errors(spark, tmp_path, capsys):
    conf = write_config(tmp_path, write_table(tmp_path / "t"))
    assert submit("vacuum", ["--config", conf, "--retention-hours", "24", "--execute"]) == 2
    assert submit("vacuum", ["--config", conf, "--table", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "24 hours" in err[0] and "unknown table 'nope'" in err[1]
    assert submit("health", ["--config", conf]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line) == json.loads(json.dumps(run_job("health", {"config": conf}).to_list()[0]))


@pytest.mark.slow
def test_health_report_through_spark_submit(tmp_path):
    """Real spark-submit: its own JVM, Delta's jars on the command line, the package as a --py-files zip."""
    conf = write_config(tmp_path, write_table(tmp_path / "lake" / "t", 4, 10))
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
    (line,) = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    assert line == json.loads(json.dumps(run_job("health", {"config": conf}).to_list()[0]))
    assert (line["table"], line["stats"]["files"], line["stats"]["rows"]) == ("t", 12, 40)
