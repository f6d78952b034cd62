"""Monitor settings: bad values and bad paths give one clear error."""
from __future__ import annotations

import pytest

from pipeline_opt.app.cli import main
from pipeline_opt.config import load
from pipeline_opt.errors import ConfigError
from pipeline_opt.monitor.settings import MonitorConfig


@pytest.mark.parametrize("text, named", [
    ("rollout_steps: [10, 50, 25, 100]", "rollout_steps"),
    ("rollout_steps: [10, 50]", "rollout_steps"),
    ("confidence: 1.5", "confidence"),
    ("latency_ratio: 0", "latency_ratio"),
    ("hit_rate_minutes: -1", "hit_rate_minutes"),
    ("memory_ratio: lots", "memory_ratio"),
    ("memroy_ratio: 0.9", "memroy_ratio"),
])
def test_bad_values_name_the_key(tmp_path, text, named):
    path = tmp_path / "monitor.yml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=named):
        load(path, MonitorConfig)


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["metrics", str(tmp_path / "missing")]) == 2
    assert main(["report", "--out", str(tmp_path / "r"), "--table", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no such path" in err[0] and "not a Delta table" in err[1]
    assert not (tmp_path / "r").exists()  # nothing written
