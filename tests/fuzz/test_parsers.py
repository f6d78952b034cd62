"""The cache part's file readers under hostile files: each file either reads to a valid value or raises one
``PipelineOptError`` line naming the file; never another exception type.

Generated cases per class (``max_examples``, deterministic): CSV traces 80, oracleGeneral traces 160 (raw bytes and
records with edge values), workloads 80, cache records 80, Spark event logs 80, lineage exports 80, plan state
files 80, policy state 150. Each case mutates a valid file: one line or field replaced by a JSON value of another
type, edge numbers (NaN, ±inf, ±2**63, 2**64), text cut mid-line, or bytes that are not UTF-8.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline_opt.cache.access_log import read_event_log, read_lineage_csv
from pipeline_opt.cache.controller import cached_tables
from pipeline_opt.cache.state import decode
from pipeline_opt.cache.trace import ORACLE_DTYPE, read_csv, read_oracle
from pipeline_opt.cache.workload import read_record, read_workload
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.units import MAX_SIZE
from tests.fuzz.hostile import CASES, EDGE_NUMBERS, FILES, FUZZ, HOSTILE_TEXT, JSON, OUTCOMES, one_line

NOT_UTF8 = st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3", b"\xe9t\xe9", b"\x80abc", b"\xed\xa0\x80"])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


def _damaged(text: str, how: str, at: int, junk: bytes) -> bytes:
    """``text`` as bytes, cut at ``at`` or with ``junk`` (not UTF-8) spliced in there, or whole."""
    data = text.encode()
    at = at % (len(data) + 1)
    return {"cut": data[:at], "junk": data[:at] + junk + data[at:]}.get(how, data)


DAMAGE = st.tuples(st.sampled_from(["whole", "cut", "junk"]), st.integers(0, 10**6), NOT_UTF8)


def _reads_or_refuses(read, path, check=lambda value: None, kind: str = ""):
    try:
        value = read(path)
    except PipelineOptError as e:
        one_line(e, path.name)
        OUTCOMES[kind, "refused"] += 1
        return None
    check(value)
    OUTCOMES[kind, "read"] += 1
    return value


def _sound_trace(t) -> None:
    assert len(t.times) == len(t.keys) == len(t.sizes) > 0
    assert (t.sizes > 0).all() and (t.sizes <= MAX_SIZE).all()


# --- traces ---------------------------------------------------------------------------------------------------------

CELL = st.one_of(HOSTILE_TEXT, EDGE_NUMBERS.map(str), st.integers(-5, 2**70).map(str))


GOOD_ROW = st.tuples(st.integers(0, 2**40), st.text("abc", min_size=1, max_size=3), st.integers(1, 10**6)).map(
    lambda r: [str(c) for c in r])


@FILES
@given(st.one_of(st.just("time,key,size"),
                 st.sampled_from(["key,size", "size,key,time,extra", "", "\ufefftime,key,size"])),
       st.lists(st.one_of(GOOD_ROW, st.lists(CELL, min_size=0, max_size=4)), max_size=5), DAMAGE)
def test_csv_traces(folder, header, rows, damage):
    CASES["csv traces"] += 1
    text = "\n".join([header, *(",".join(c.replace("\n", " ") for c in r) for r in rows)]) + "\n"
    path = folder / "trace.csv"
    path.write_bytes(_damaged(text, *damage))
    _reads_or_refuses(read_csv, path, _sound_trace, "csv traces")


@FILES
@given(st.binary(max_size=24 * 5))
def test_oracle_traces_of_raw_bytes(folder, data):
    CASES["oracleGeneral traces"] += 1
    path = folder / "trace.oracleGeneral.bin"
    path.write_bytes(data)
    _reads_or_refuses(read_oracle, path, _sound_trace, "oracleGeneral traces")


@FILES
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 2**63 - 1, 2**63, 2**64 - 1]),
                          st.sampled_from([0, 1, 2**31, 2**32 - 1]),
                          st.one_of(st.just(-1), st.integers(-(2**63), 2**63 - 1))),
                min_size=1, max_size=6))
def test_oracle_traces_of_edge_records(folder, records):
    CASES["oracleGeneral traces"] += 1
    path = folder / "edges.oracleGeneral.bin"
    path.write_bytes(np.array(records, dtype=ORACLE_DTYPE).tobytes())
    _reads_or_refuses(read_oracle, path, _sound_trace, "oracleGeneral traces")


# --- workloads and cache records -------------------------------------------------------------------------------------

WORKLOAD = [
    {"format": "pipeline-opt-workload", "version": 1, "name": "w", "tables": ["a"], "sources": ["loader"]},
    {"files": [[0, 5, "f0"], [0, 7, "f1"]]},
    {"read": 0, "keys": [0, 1, 0]},
    {"announce": 0, "keys": [1], "start_after": 2},
    {"read": -1, "keys": [1]},
]


def _mutated(lines: list, line: int, key: str | None, value) -> list:
    """``lines`` with one line replaced by ``value`` (``key`` None) or one of its keys set to it."""
    out = copy.deepcopy(lines)
    i = line % len(out)
    if key is None or not isinstance(out[i], dict):
        out[i] = value
    else:
        out[i][key] = value
    return out


WORKLOAD_KEYS = st.sampled_from([None, "format", "version", "tables", "sources", "files", "read", "keys",
                                 "announce", "start_after", "name"])


@FILES
@given(st.integers(0, 4), WORKLOAD_KEYS, st.one_of(JSON, EDGE_NUMBERS), DAMAGE)
def test_workloads(folder, line, key, value, damage):
    CASES["workloads"] += 1
    text = "".join(json.dumps(x) + "\n" for x in _mutated(WORKLOAD, line, key, value))
    path = folder / "w.workload.jsonl"
    path.write_bytes(_damaged(text, *damage))
    _reads_or_refuses(read_workload, path, _sound_trace, "workloads")


RECORD = [["r", "s3://b/f0", 5, "a"], ["a", "loader", ["s3://b/f1"], 1], ["r", "s3://b/f1", 7, None],
          ["w", "loader"]]


@FILES
@given(st.integers(0, 4), st.integers(0, 3), st.one_of(JSON, EDGE_NUMBERS), DAMAGE)
def test_cache_records(folder, line, field, value, damage):
    CASES["cache records"] += 1
    ops = copy.deepcopy(RECORD)
    op = ops[line] if line < len(ops) else []  # line 4: the record as written
    if not op:
        pass
    elif field < len(op):
        op[field] = value
    else:
        ops[line] = value
    path = folder / "cache.record.jsonl"
    path.write_bytes(_damaged("".join(json.dumps(x) + "\n" for x in ops), *damage))
    _reads_or_refuses(read_record, path, _sound_trace, "cache records")


# --- Spark event logs and lineage exports ----------------------------------------------------------------------------

START = {
    "Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart", "executionId": 3, "time": 1000,
    "sparkPlanInfo": {"nodeName": "WholeStageCodegen", "metadata": {}, "metrics": [], "children": [
        {"nodeName": "Scan parquet spark_catalog.default.t", "metadata": {"Location": "PreparedDeltaFileIndex[]"},
         "metrics": [{"name": "size of files read", "accumulatorId": 7}], "children": []}]},
}
ACCUM = {"Event": "org.apache.spark.sql.execution.ui.SparkListenerDriverAccumUpdates", "executionId": 3,
         "accumUpdates": [[7, 4096]]}
EVENT_PATHS = [(), ("Event",), ("executionId",), ("time",), ("sparkPlanInfo",), ("sparkPlanInfo", "children"),
               ("sparkPlanInfo", "children", 0), ("sparkPlanInfo", "children", 0, "metadata"),
               ("sparkPlanInfo", "children", 0, "metadata", "Location"), ("sparkPlanInfo", "children", 0, "metrics"),
               ("sparkPlanInfo", "children", 0, "metrics", 0), ("sparkPlanInfo", "children", 0, "metrics", 0,
                                                                "accumulatorId"),
               ("sparkPlanInfo", "children", 0, "nodeName"), ("accumUpdates",), ("accumUpdates", 0),
               ("accumUpdates", 0, 1)]


def _set(doc, where: tuple, value):
    if not where:
        return value
    out = copy.deepcopy(doc)
    node = out
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = value
    return out


@FILES
@given(st.sampled_from(EVENT_PATHS), st.one_of(JSON, EDGE_NUMBERS, st.just("yesterday")), DAMAGE)
def test_event_logs(folder, where, value, damage):
    CASES["event logs"] += 1
    event = START if where[:1] != ("accumUpdates",) else ACCUM
    other = ACCUM if event is START else START
    mutated = _set(event, where, value)
    if where == ():  # keep the words the reader filters lines by, so the replaced event is parsed, not skipped
        mutated = [mutated, {"Event": "SQLExecutionStart"}]
    elif where == ("Event",):
        mutated["SQLExecutionStart"] = 1
    text = json.dumps(mutated) + "\n"
    path = folder / "events.log"
    path.write_bytes(_damaged(json.dumps(other) + "\n" + text, *damage))
    _reads_or_refuses(read_event_log, path, lambda accesses: all(a.bytes >= 0 for a in accesses), "event logs")


@FILES
@given(st.sampled_from(["event_time,source_table_full_name,source_path,size_bytes", "event_time,source_path",
                        "source_table_full_name", ""]),
       st.lists(st.tuples(st.one_of(HOSTILE_TEXT, st.just("2026-01-01T00:00:00Z"), st.just("yesterday")),
                          st.sampled_from(["main.s.t", "", "x"]), st.sampled_from(["", "/nowhere/t"]),
                          st.one_of(HOSTILE_TEXT, EDGE_NUMBERS.map(str))), max_size=4), DAMAGE)
def test_lineage_exports(folder, header, rows, damage):
    CASES["lineage exports"] += 1
    quoted = [",".join(json.dumps(str(c).replace("\n", " ")) for c in r) for r in rows]
    path = folder / "lineage.csv"
    path.write_bytes(_damaged("\n".join([header, *quoted]) + "\n", *damage))
    _reads_or_refuses(read_lineage_csv, path, lambda accesses: all(0 <= a.bytes <= MAX_SIZE for a in accesses),
                      "lineage exports")


# --- state files -----------------------------------------------------------------------------------------------------

@FILES
@given(st.one_of(JSON, st.builds(lambda v: {"cached": v}, JSON)), DAMAGE)
def test_plan_state_files(folder, data, damage):
    CASES["plan state files"] += 1
    path = folder / "state.json"
    path.write_bytes(_damaged(json.dumps(data), *damage))

    def sound(tables):
        assert all(isinstance(t, str) and t for t in tables)
        assert isinstance(data, dict) and data.get("cached", []) == [t for t in data.get("cached", [])]
    _reads_or_refuses(lambda p: cached_tables([], None, p), path, sound, "plan state files")


def test_a_string_is_not_a_set_of_tables(folder):
    path = folder / "string.json"
    path.write_text('{"cached": "t1"}')
    with pytest.raises(PipelineOptError, match=r"string\.json: not a cache state file: expected"):
        cached_tables([], None, path)


@FUZZ
@given(st.one_of(JSON, st.builds(lambda tag, n, v: {tag: n, "v": v}, st.sampled_from(
    ["$o", "$d", "$l", "$t", "$s", "$q", "$a", "$rng", "$mt", "$ref", "$fs"]), st.integers(0, 3), JSON)))
def test_policy_state(data):
    CASES["policy state"] += 1
    try:
        policy = decode(data, "lru", 1000)
    except PipelineOptError as e:
        one_line(e)
        return
    assert policy.capacity_bytes == 1000


FILE_CLASSES = ["csv traces", "oracleGeneral traces", "workloads", "cache records", "event logs", "lineage exports",
                "plan state files"]


def test_summary(capsys):
    """Prints the generated cases per class; every file class must have produced files read and files refused
    (else its generator misses one side and the test above it proves nothing)."""
    ran = [k for k in FILE_CLASSES if CASES[k]]
    if not ran:
        pytest.skip("run with the tests above it")
    with capsys.disabled():
        print("\nfuzz cases per class: " + ", ".join(f"{k} {CASES[k]} (read {OUTCOMES[k, 'read']}, refused "
                                                     f"{OUTCOMES[k, 'refused']})" for k in ran))
    assert all(OUTCOMES[k, "read"] and OUTCOMES[k, "refused"] for k in ran), dict(OUTCOMES)
