"""Hostile paths and flags through every table, loader, training and monitoring command, in process: each exits
non-zero with one stderr line and no traceback, and the table, the not-a-table folder and the working folder are
byte for byte as before. Every case here is refused before a Spark session starts (a bad path or value is checked
where it enters), so the module runs in seconds; the test at the end checks that no session was started.
"""
from __future__ import annotations

import os

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from pipeline_opt.app.cli import main
from tests.fuzz.hostile import refused

# {t}: a Delta table; {nd}: a folder that is not one; {gone}: no such path; {log}: a file inside _delta_log
PATHS = ["", "a\nb", "{nd}", "{gone}", "{log}"]
TABLE_COMMANDS = [["health"], ["compact"], ["vacuum"], ["stream"], ["partitioning"], ["fingerprint"], ["metrics"],
                  ["copy", "{t}"]]
FLAGS = [
    ["health", "{t}", "--version", "-1"],
    ["health", "{t}", "--version", "99"],
    ["compact", "{t}", "--min-file-size", "99999999TB"],
    ["compact", "{t}", "--min-file-size", "nan"],
    ["compact", "{t}", "--max-file-size", "1KB", "--min-file-size", "1MB"],
    ["compact", "{t}", "--zorder-by", "x`; DROP TABLE t"],
    ["vacuum", "{t}", "--retention-hours", "nan"],
    ["vacuum", "{t}", "--retention-hours", "-1"],
    ["vacuum", "{t}", "--retention-hours", "0", "--execute"],
    ["stream", "{t}", "--max-batches", "0"],
    ["stream", "{t}", "--batch-size", "-1"],
    ["stream", "{t}", "--columns", "nope"],
    ["stream", "{t}", "--rank", "3", "--world-size", "2"],
    ["fingerprint", "{t}", "--version", "-3"],
    ["copy", "{nd}", "{gone}"],
    ["memory-plan", "--layers", "0"],
    ["memory-plan", "--budget-gib", "inf"],
    ["memory-plan", "--budget-gib", "-4"],
    ["report", "--out", "{log}"],
    ["schedule", "--config", "{gone}"],
    ["check-config", "{gone}"],
    ["health", "{t}", "--min-file-size", ""],
    ["stream", "{t}", "--columns", " "],
    ["cache", "simulate", "--trace", "{log}", "--sizes", ""],
]


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    write_deltalake(str(root / "t"), pa.table({"x": list(range(10))}))
    (root / "nd").mkdir()
    (root / "nd" / "a.txt").write_text("not a table")
    return {"t": root / "t", "nd": root / "nd", "gone": root / "gone",
            "log": root / "t" / "_delta_log" / "00000000000000000000.json", "root": root}


def _words(words: list[str], places) -> list[str]:
    return [w.format(**{k: str(v) for k, v in places.items()}) for w in words]


@pytest.mark.parametrize("path", PATHS, ids=repr)
@pytest.mark.parametrize("command", TABLE_COMMANDS, ids=lambda c: c[0])
def test_table_commands_refuse_bad_paths(command, path, places, capsys, monkeypatch):
    monkeypatch.chdir(places["root"])
    argv = _words([command[0], path, *command[1:]], places)
    line = refused(main, argv, [places["root"]], capsys)
    assert line.startswith(f"pipeline-opt {command[0]}: error: ") or line.startswith("pipeline-opt: error: "), line


@pytest.mark.parametrize("words", FLAGS, ids=" ".join)
def test_commands_refuse_bad_values(words, places, capsys, monkeypatch):
    monkeypatch.chdir(places["root"])
    refused(main, _words(words, places), [places["root"]], capsys)


def test_no_spark_session_was_started():
    from pyspark.sql import SparkSession

    if os.environ.get("PYSPARK_GATEWAY_PORT"):  # another module's shared session: nothing to say about ours
        pytest.skip("a Spark session of the suite is running in this process")
    assert SparkSession.getActiveSession() is None
