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


def test_the_bundles_jobs_read_the_shipped_monitor_config_and_record_beside_their_tables(tmp_path, monkeypatch):
    import glob

    import yaml

    from pipeline_opt.app import monitoring

    for path in sorted(glob.glob("conf/databricks/*.yml")):
        for name, job in yaml.safe_load(open(path))["resources"]["jobs"].items():
            for cluster in job["job_clusters"]:
                env = cluster["new_cluster"].get("spark_env_vars", {})
                assert env.get(monitoring.ENV) == "${workspace.file_path}/conf/monitor.yml", f"{path}: {name}"
    monkeypatch.setenv(monitoring.ENV, "conf/monitor.yml")
    assert monitoring.monitor_config(str(tmp_path)) is None  # no lakehouse under the tables' folder yet
    (tmp_path / "lakehouse").mkdir()
    config = monitoring.monitor_config(str(tmp_path))
    assert config is not None and (config.metrics_table, config.config_store) == (
        f"{tmp_path}/lakehouse/_metrics", f"{tmp_path}/lakehouse/_configs")
