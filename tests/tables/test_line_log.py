"""The line-log reader shared by access logs and predicate logs: entries, skipped lines, and errors naming the line."""
from __future__ import annotations

import pytest

from pipeline_opt.errors import PipelineOptError
from pipeline_opt.tables.line_log import read_line_log
from pipeline_opt.tables.schedule import read_access_log


def test_entries_skip_blanks_and_comments_and_take_the_first_present_key(tmp_path):
    log = tmp_path / "a.log"
    log.write_text('# header\n\n  plain  \n{"b": "second", "a": "first"}\n{"a": "", "b": "fallback"}\n')
    assert read_line_log(log, "test log", ("a", "b")) == [(3, "plain"), (4, "first"), (5, "fallback")]


@pytest.mark.parametrize("line", ['{"other": 1}', '{"table": ', '{"table": null}'])
def test_a_bad_json_line_names_file_and_line(tmp_path, line):
    log = tmp_path / "access.log"
    log.write_text(f"ok\n{line}\n")
    with pytest.raises(PipelineOptError, match=r"access\.log:2: expected a JSON object with 'table'"):
        read_access_log(str(log))


def test_a_missing_log_says_which(tmp_path):
    with pytest.raises(PipelineOptError, match="access log not found"):
        read_access_log(str(tmp_path / "nope.log"))
