"""The error boundary: expected failures are one line and a documented exit code; bugs keep their traceback."""
import json
import os
import subprocess
import sys

import pytest

from pipeline_opt.app.boundary import debugging, explain, guarded
from pipeline_opt.errors import ConfigError


def _raising(exc: BaseException):
    def call() -> int:
        raise exc
    return call


def _one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_user_error_is_its_own_exit_code(capsys):
    assert guarded("p", _raising(ConfigError("batch_size: -1 is not a positive integer"))) == 2
    assert _one_error_line(capsys) == "p: error: batch_size: -1 is not a positive integer"


def test_os_refusal_names_the_path_and_exits_4(tmp_path, capsys):
    def write_into_a_folder() -> int:
        (tmp_path / "out").mkdir()
        open(tmp_path / "out", "w")
        return 0

    assert guarded("p", write_into_a_folder) == 4
    line = _one_error_line(capsys)
    assert line.startswith("p: error: Is a directory: ") and line.endswith("out")


def test_interrupt_is_quiet_130(capsys):
    assert guarded("p", _raising(KeyboardInterrupt())) == 130
    assert _one_error_line(capsys) == "p: interrupted"


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        guarded("p", lambda: 1 // 0)


def test_debug_lets_user_errors_through(monkeypatch):
    monkeypatch.delenv("PIPELINE_OPT_DEBUG", raising=False)
    with pytest.raises(ConfigError):
        guarded("p", _raising(ConfigError("x")), debug=True)
    argv = ["health", "--debug", "t"]
    assert debugging(argv) and argv == ["health", "t"]
    # --debug reaches what the call starts, and only that call: the next in-process command is guarded again
    assert guarded("p", lambda: int(os.environ["PIPELINE_OPT_DEBUG"]), debug=True) == 1
    assert "PIPELINE_OPT_DEBUG" not in os.environ and guarded("p", _raising(ConfigError("x"))) == 2


def test_spark_analysis_error_is_bad_input(spark):
    with pytest.raises(Exception) as caught:
        spark.sql("SELECT no_such_column FROM range(1)").collect()
    message, code = explain(caught.value)
    assert code == 2 and message.startswith("Spark: ") and "no_such_column" in message and "\n" not in message


def test_spark_job_that_storage_failed_names_the_file_and_exits_4(spark, tmp_path):
    path = tmp_path / "t"
    spark.range(100).repartition(4).write.format("delta").save(str(path))
    gone = sorted(path.glob("*.parquet"))[0]
    gone.unlink()  # a data file the log still references
    with pytest.raises(Exception) as caught:
        spark.read.format("delta").load(str(path)).collect()
    message, code = explain(caught.value)
    assert code == 4 and gone.name in message and "does not exist" in message and "\n" not in message
    assert "--check-files" in message


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline_opt.app.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_config_that_is_not_utf8_is_one_line(tmp_path):
    config = tmp_path / "tables.yml"
    config.write_bytes("tables:\n  - name: caf\u00e9\n    path: x\n".encode("latin-1"))
    done = _cli("schedule", "--config", str(config))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "not UTF-8" in done.stderr


def test_debug_flag_shows_the_traceback(tmp_path):
    done = _cli("--debug", "health", str(tmp_path / "missing"))
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_argparse_refusals_are_one_line(capsys):
    from pipeline_opt.app.cli import main

    for argv in (["cache", "workload", "--preset", "nope"], ["health", "--bogus"], []):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        line = _one_error_line(capsys)
        assert "error:" in line and line.endswith("--help)") and "usage" not in line


def test_sparks_file_uri_forms_name_a_local_table(spark, tmp_path, capsys):
    from pipeline_opt.app.cli import main

    path = tmp_path / "t"
    spark.range(10).write.format("delta").save(str(path))
    for form in (f"file:{path}", f"file://{path}"):
        assert main(["health", form, "--json"]) == 0, form
        facts = json.loads(capsys.readouterr().out)
        assert facts["path"] == str(path) and facts["stats"]["rows"] == 10
