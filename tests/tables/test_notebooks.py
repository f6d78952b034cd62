"""Each Databricks notebook executed locally: real Spark session, a small ``dbutils.widgets`` stand-in."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"


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


def _table(path: Path, appends: int, rows: int) -> str:
    for i in range(appends):
        write_deltalake(str(path), pa.table({"id": pa.array(range(i * rows, (i + 1) * rows), pa.int64()),
                                             "part": pa.array([j % 3 for j in range(rows)], pa.int64())}),
                        mode="append", partition_by=["part"])
    return str(path)


@pytest.fixture
def lake(tmp_path):
    path = _table(tmp_path / "t", 6, 30)
    conf = tmp_path / "tables.yml"
    conf.write_text(f"defaults:\n  min_file_size: 8KB\n  min_bin_files: 4\ntables:\n  - name: t\n    path: {path}\n")
    return str(conf), path


def test_every_notebook_is_databricks_source_with_widgets_and_library_calls():
    assert {p.stem for p in NOTEBOOKS} == {"health_report", "compact_tables", "vacuum_tables", "partitioning_advisor"}
    for p in NOTEBOOKS:
        source = p.read_text()
        assert SEPARATOR in source and "dbutils.widgets.get(" in source and "from pipeline_opt." in source
        for n, code in enumerate(cells(p)):
            compile(code, f"{p.name}[{n}]", "exec")


def test_health_notebook(spark, lake):
    conf, _ = lake
    (frame,) = run_notebook("health_report", spark, config=conf)["shown"]
    row = frame.iloc[0]
    assert (row["table"], row["files"], row["delta_num_files"], row["rows"]) == ("t", 18, 18, 180)


def test_compaction_notebook(spark, lake):
    conf, path = lake
    ns = run_notebook("compact_tables", spark, config=conf)
    (row,) = ns["rows"]
    assert row["files_removed"] == 18 and row["files_added"] == 3 and row["verified"]
    assert len(DeltaTable(path).file_uris()) == 3 and ns["shown"][0].iloc[0]["table"] == "t"


def test_vacuum_notebook_dry_run_and_refusal(spark, lake):
    conf, _ = lake
    (row,) = run_notebook("vacuum_tables", spark, config=conf)["rows"]
    assert (row["dry_run"], row["files"], row["retention_hours"]) == (True, 0, 168.0)
    from pipeline_opt.tables.vacuum import UnsafeRetentionError

    with pytest.raises(UnsafeRetentionError):
        run_notebook("vacuum_tables", spark, config=conf, retention_hours="1", execute="true")


def test_partitioning_notebook(spark, lake, tmp_path):
    _, path = lake
    (tmp_path / "q.log").write_text("WHERE id = 3\nWHERE id > 7 AND part = 1\n")
    ns = run_notebook("partitioning_advisor", spark, path=path, predicates=str(tmp_path / "q.log"))
    advice = ns["advice"]
    assert advice.partition_by == [] and advice.cluster_by == ["id", "part"] and advice.applied is None
    assert set(ns["shown"][0]["name"]) == {"id", "part"}
