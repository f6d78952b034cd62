"""Hostile files and flags through the command line (``pipeline_opt.app.cli.main``), as a user runs them: each one
exits non-zero with exactly one line on stderr, no traceback, and nothing in the output folder changes.

Fixed cases (no Spark: ``cache plan`` without ``--apply`` and ``cache simulate`` start none): 13 ``cache simulate``,
12 ``cache plan``, 5 ``cache workload``.
"""
from __future__ import annotations

import json

import pytest

from pipeline_opt.app.cli import main
from tests.fuzz.hostile import refused

START = {"Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart", "executionId": 1, "time": 5,
         "sparkPlanInfo": {"nodeName": "Scan parquet main.s.t", "metadata": {"Location": "PreparedDeltaFileIndex[]"},
                           "metrics": [], "children": []}}


def _event(**changes) -> str:
    return json.dumps({**START, **changes}) + "\n"


# name -> bytes of the hostile (or, for flag cases, good) input files
FILES = {
    "ok.csv": b"time,key,size\n1,a,10\n2,b,20\n3,a,10\n",
    "huge.csv": b"time,key,size\n1,a,99999999999999999999999\n",
    "negative.csv": b"time,key,size\n1,a,-10\n",
    "nan.csv": b"time,key,size\nnan,a,10\n",
    "latin1.csv": "time,key,size\n1,caf\u00e9,10\n".encode("latin-1"),
    "cut.oracleGeneral.bin": bytes(24 + 7),
    "zero.oracleGeneral.bin": bytes(24),
    "chars.workload.jsonl": b'{"format": "pipeline-opt-workload", "version": 1, "tables": "ab", "sources": []}\n',
    "huge.workload.jsonl": (b'{"format": "pipeline-opt-workload", "version": 1, "tables": ["a"], "sources": []}\n'
                            b'{"files": [[0, 18446744073709551616, ""]]}\n{"read": -1, "keys": [0]}\n'),
    "ok.log": _event().encode(),
    "yesterday.log": _event(time="yesterday").encode(),
    "array.log": _event(sparkPlanInfo=[{"nodeName": "Scan parquet t"}]).encode(),
    "list-event.log": b'["SparkListenerSQLExecutionStart", "Event"]\n',
    "binary.log": b'{"Event": "SparkListenerSQLExecutionStart", "x": "\xff\xfe"}\n',
    "latin1-lineage.csv": "event_time,source_table_full_name\n2026-01-01,caf\u00e9\n".encode("latin-1"),
    "yesterday-lineage.csv": b"event_time,source_table_full_name\nyesterday,main.s.t\n",
    "string-state.json": b'{"cached": "t1"}',
    "list-state.json": b'["t1"]',
}

SIMULATE = [
    ["--trace", "huge.csv", "--format", "csv"],
    ["--trace", "negative.csv", "--format", "csv"],
    ["--trace", "nan.csv", "--format", "csv"],
    ["--trace", "latin1.csv", "--format", "csv"],
    ["--trace", "cut.oracleGeneral.bin"],
    ["--trace", "zero.oracleGeneral.bin"],
    ["--trace", "chars.workload.jsonl", "--format", "workload"],
    ["--trace", "huge.workload.jsonl", "--format", "workload"],
    ["--trace", "ok.csv", "--format", "csv", "--sizes", ","],
    ["--trace", "ok.csv", "--format", "csv", "--sizes", "nan"],
    ["--trace", "ok.csv", "--format", "csv", "--sizes", "0.1,2"],
    ["--trace", "ok.csv", "--format", "csv", "--limit", "0"],
    ["--trace", "ok.csv", "--format", "csv", "--limit=-4990"],
]
PLAN = [
    ["--log", "yesterday.log"],
    ["--log", "array.log"],
    ["--log", "list-event.log"],
    ["--log", "binary.log"],
    ["--log", "latin1-lineage.csv"],
    ["--log", "yesterday-lineage.csv"],
    ["--log", "ok.log", "--state", "string-state.json"],
    ["--log", "ok.log", "--state", "list-state.json"],
    ["--log", "ok.log", "--budget", "99999999TB"],
    ["--log", "ok.log", "--budget=-4GiB"],
    ["--log", "ok.log", "--budget", "0"],
    ["--log", "ok.log", "--horizon", "inf"],
]
WORKLOAD = [["--sigma", "nan"], ["--files", "1000000000"], ["--scale", "inf"], ["--tables", "0"],
            ["--tables", "1000", "--files", "1000000", "--epochs", "1000"]]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    for name, data in FILES.items():
        (folder / name).write_bytes(data)
    return folder


def _refused(argv: list[str], inputs, out, capsys) -> str:
    return refused(main, argv, [inputs, out], capsys)


def _args(words: list[str], inputs) -> list[str]:
    return [str(inputs / w) if w in FILES else w for w in words]


@pytest.mark.parametrize("words", SIMULATE, ids=lambda w: " ".join(w[1:]))
def test_cache_simulate_refuses(words, inputs, tmp_path, capsys):
    line = _refused(["cache", "simulate", *_args(words, inputs), "--policies", "lru", "--no-bound"], inputs,
                    tmp_path, capsys)
    assert line.startswith("pipeline-opt cache simulate: error: ")
    named = [w for w in words if w in FILES and w != "ok.csv"]
    assert all(w in line for w in named), line  # a bad file is named; a bad flag names the flag
    assert named or ("--sizes" in line or "--limit" in line), line


@pytest.mark.parametrize("words", PLAN, ids=lambda w: " ".join(w))
def test_cache_plan_refuses(words, inputs, tmp_path, capsys):
    line = _refused(["cache", "plan", *_args(words, inputs)], inputs, tmp_path, capsys)
    named = [w for w in words if w in FILES and w != "ok.log"]
    assert all(w in line for w in named), line


@pytest.mark.parametrize("words", WORKLOAD, ids=lambda w: " ".join(w))
def test_cache_workload_refuses_and_writes_nothing(words, inputs, tmp_path, capsys):
    _refused(["cache", "workload", "--out", str(tmp_path / "w.workload.jsonl"), *words], inputs, tmp_path, capsys)
    assert not (tmp_path / "w.workload.jsonl").exists()


def test_a_good_run_passes_the_same_checks(inputs, tmp_path, capsys):
    """The harness itself: the good files of the cases above do run (exit 0), so the refusals are the inputs'."""
    assert main(["cache", "simulate", "--trace", str(inputs / "ok.csv"), "--format", "csv", "--policies", "lru",
                 "--no-bound", "--limit", "2", "--sizes", "0.5"]) == 0
    assert main(["cache", "plan", "--log", str(inputs / "ok.log")]) == 0
