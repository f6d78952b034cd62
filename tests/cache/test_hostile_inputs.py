"""The cache part's readers on the issue's hostile probes: each refusal is one line naming the file and the record,
and the edge values that are valid data are read, not refused."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline_opt.cache.access_log import read_access_logs
from pipeline_opt.cache.shared_state import SharedPolicy
from pipeline_opt.cache.trace import ORACLE_DTYPE, TraceError, read_trace
from pipeline_opt.errors import PipelineOptError


@pytest.mark.parametrize("size", [2**63, 2**64 + 1, -(2**63), 0])
def test_csv_sizes_beyond_int64_or_not_positive_name_the_line(tmp_path, size):
    p = tmp_path / "t.csv"
    p.write_text(f"time,key,size\n1,a,5\n2,b,{size}\n")
    with pytest.raises(TraceError, match=r"t\.csv: line 3 has time '2' and size"):
        read_trace(p, "csv")


def test_oracle_ids_above_2_63_are_keys_not_errors(tmp_path):
    """Ids are opaque: two ids that differ stay two keys, whatever their top bit."""
    p = tmp_path / "t.oracleGeneral.bin"
    np.array([(1, 2**64 - 1, 10, -1), (2, 2**63, 10, -1), (3, 1, 10, -1)], ORACLE_DTYPE).tofile(p)
    assert len(set(read_trace(p).keys.tolist())) == 3


@pytest.mark.parametrize("event, says", [
    ({"time": "yesterday"}, "line 1: time 'yesterday' is not milliseconds since 1970"),
    ({"time": -5}, "line 1: time '-5' is not"),
    ({"sparkPlanInfo": [{"nodeName": "Scan parquet t"}]}, "line 1: a SparkListenerSQLExecutionStart event of"),
    ({"sparkPlanInfo": {"nodeName": "Scan parquet t", "metadata": {"Location": "X[/t]"}, "children": "abc"}},
     "wrong shape"),
])
def test_event_logs_of_the_wrong_shape_name_the_line(tmp_path, event, says):
    p = tmp_path / "events"
    p.write_text(json.dumps({"Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart",
                             "executionId": 1, "time": 5, "sparkPlanInfo": {}, **event}) + "\n")
    with pytest.raises(PipelineOptError, match=says):
        read_access_logs([p])


def test_non_utf8_event_log_is_refused_not_replaced(tmp_path):
    p = tmp_path / "events"
    p.write_bytes(b'{"Event": "SparkListenerSQLExecutionStart"}\n{"Event": "\xe9"}\n')
    with pytest.raises(PipelineOptError, match=r"events: line 2 is not UTF-8 text"):
        read_access_logs([p])


def test_lineage_sizes_and_times_outside_their_domain(tmp_path):
    p = tmp_path / "lineage.csv"
    p.write_text("event_time,source_table_full_name,size_bytes\n2026-01-01,t,inf\n")
    with pytest.raises(PipelineOptError, match=r"lineage\.csv: line 2: size_bytes 'inf' is not in 0\.\."):
        read_access_logs([p])
    p.write_text("event_time,source_table_full_name\nyesterday,t\n")
    with pytest.raises(PipelineOptError, match=r"line 2: event_time 'yesterday' is not an ISO time"):
        read_access_logs([p])


def test_a_shared_snapshot_nested_too_deep_is_rebuilt(tmp_path):
    """A snapshot that is not valid state is a reason to rebuild from the folder, never a crash."""
    (tmp_path / ".state.json").write_text("[" * 100000 + "]" * 100000)
    shared = SharedPolicy(tmp_path, "lru", 1000, {}, contents=lambda: [], remove=lambda key: None)
    with shared.session() as s:
        assert s.request("a", 10) is False
        assert "a" in s
