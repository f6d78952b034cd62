"""The CLI: help for every command, one clear line and a non-zero exit for user errors."""
import json
import subprocess
import sys

import pytest

from pipeline_opt.app.cli import build_parser, main


def _commands():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert "usage: pipeline-opt" in capsys.readouterr().out


def test_missing_path_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["health", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"pipeline-opt health: error: {tmp_path / 'nope'}: no such path"]


def test_non_delta_path_is_rejected(tmp_path, capsys):
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    assert main(["health", str(tmp_path)]) == 2
    assert "not a Delta table" in capsys.readouterr().err


def test_health_json_on_a_real_table(spark, tmp_path, capsys):
    path = str(tmp_path / "t")
    spark.range(100).repartition(3).write.format("delta").save(path)
    assert main(["health", path, "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["stats"]["files"] == 3 and facts["stats"]["rows"] == 100 and facts["version"] == 0


def test_console_script_exits_nonzero_without_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pipeline_opt.app.cli", "health", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
