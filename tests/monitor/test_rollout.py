"""The versioned settings and the rollout commands: checks before any write, one rollout per setting, status."""
from __future__ import annotations

import pytest

from pipeline_opt.app.cli import main
from pipeline_opt.app.jobs import run_job
from pipeline_opt.app.monitoring import monitor_settings
from pipeline_opt.monitor.controlled import SETTINGS, SettingError, check_value
from pipeline_opt.monitor.metrics import MetricPoint
from pipeline_opt.monitor.rollouts import RolloutStateError, Settings


def test_an_unknown_key_names_the_valid_ones_and_a_bad_value_is_refused_before_the_store(tmp_path, capsys):
    root = tmp_path / "settings"
    settings = Settings(root)
    with pytest.raises(SettingError, match="known: cache.budget, cache.policy"):
        settings.start("compaction.nope", "1GB", "me", "")
    for key, bad in (("cache.policy", "fancy"), ("compaction.target_file_size", "big"),
                     ("training.plan", "fp32+none"), ("loader.workers", "-1"), ("training.budget_gib", "0"),
                     ("loader.prefetch", "0")):
        with pytest.raises(SettingError, match=key):
            settings.start(key, bad, "me", "")
    assert not root.exists()  # nothing was written for any of them
    assert main(["rollout", "start", "cache.policy", "fancy", "--monitor-config", str(_conf(tmp_path))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cache policy 'fancy' is not one of" in err[0]
    assert check_value("training.plan", " bf16+full+adamw ") == "bf16+full+adamw"
    assert set(SETTINGS) >= {"compaction.target_file_size", "cache.policy", "cache.budget", "training.plan",
                             "training.budget_gib", "loader.workers", "loader.prefetch"}


def _conf(tmp_path):
    conf = tmp_path / "monitor.yml"
    conf.write_text(f"metrics_table: {tmp_path / 'lh' / '_metrics'}\nconfig_store: {tmp_path / 'lh' / '_settings'}\n"
                    "ab_min_units: 2\nab_resamples: 200\n")
    return conf


def test_every_change_has_a_version_an_author_and_reason_and_a_previous_version(tmp_path):
    settings = Settings(tmp_path / "settings")
    assert settings.value("cache.budget") is None  # nothing stored: the job's own default
    first = settings.set("cache.budget", "2GiB", "ana", "the shared budget")
    second = settings.set("cache.budget", "4GiB", "ben", "more memory on the new cluster")
    v = settings.store.get("cache.budget")
    assert (v.version, v.parent, v.note, v.config) == (second, first, "ben: more memory on the new cluster",
                                                        {"value": "4GiB"})
    assert [a.version for a in settings.store.log("cache.budget")] == [1, 2]


def test_one_rollout_per_setting_and_promote_abort(tmp_path):
    settings = Settings(tmp_path / "settings")
    state = settings.start("cache.policy", "s3fifo", "ana", "better on scans")
    assert (state.baseline_version, state.candidate_version, state.stage) == (1, 2, 0)
    assert settings.value("cache.policy") is None  # the default stays active while the candidate is tried
    with pytest.raises(RolloutStateError, match="already has rollout cache.policy-v2 running"):
        settings.start("cache.policy", "arc", "ben", "")
    with pytest.raises(RolloutStateError, match="under rollout"):
        settings.set("cache.policy", "arc", "ben", "")
    settings.promote("cache.policy", "ana", "looks good")
    assert settings.value("cache.policy") == "s3fifo" and settings.rollout("cache.policy").status == "promoted"
    settings.start("cache.policy", "arc", "ben", "try arc")
    settings.abort("cache.policy", "ben", "changed my mind")
    assert settings.value("cache.policy") == "s3fifo"
    assert settings.resolve("cache.policy", "any-table").value == "s3fifo"
    with pytest.raises(RolloutStateError, match="no running rollout"):
        settings.promote("cache.policy", "ben", "")


def test_the_split_is_stable_and_grows_with_the_stages(tmp_path):
    settings = Settings(tmp_path / "settings")
    settings.set("loader.workers", "2", "ana", "")
    settings.start("loader.workers", "4", "ana", "more parallel reads")
    tables = [f"table{i}" for i in range(400)]
    at_10 = {t for t in tables if settings.resolve("loader.workers", t).arm == "candidate"}
    assert 20 <= len(at_10) <= 60
    assert all(settings.resolve("loader.workers", t).value == "4" for t in at_10)
    state = settings.rollout("loader.workers")
    state.stage = 1
    settings._save(state)
    at_25 = {t for t in tables if settings.resolve("loader.workers", t).arm == "candidate"}
    assert at_10 < at_25 and 70 <= len(at_25) <= 130


def test_status_shows_arms_samples_effect_and_next_step(tmp_path):
    conf = _conf(tmp_path)
    run_job("rollout start", {"key": "loader.workers", "value": "4", "monitor_config": str(conf),
                              "reason": "faster"})
    config = monitor_settings(str(conf))
    settings = Settings(config.config_store, config)
    rid = settings.rollout("loader.workers").id
    points = [MetricPoint(1.0 + i, "throughput.rows_per_s", "gauge", v, "rows/s", "stream", f"r{i}",
                          {"arm": arm, "stage": "10", "rollout.loader.workers": rid})
              for i, (arm, v) in enumerate([("baseline", 100), ("baseline", 110), ("candidate", 150),
                                            ("candidate", 160)])]
    summary = settings.summary("loader.workers", points)
    assert summary["samples"] == {"baseline": 2, "candidate": 2} and summary["percent"] == 10
    assert summary["effect"]["ratio"] == pytest.approx(155 / 105) and summary["effect"]["not_worse"]
    assert "throughput.rows_per_s" in summary["next"] and summary["next"].endswith("25 %")
    assert [s["action"] for s in summary["steps"]] == ["start"]
    step = settings.step("loader.workers", points)
    assert step.action == "advance" and settings.rollout("loader.workers").stage == 1


def test_settings_commands_set_and_show_through_the_cli(tmp_path, capsys):
    import json

    conf = str(_conf(tmp_path))
    assert main(["settings", "set", "loader.workers", "3", "--reason", "more cores", "--author", "ana",
                 "--monitor-config", conf]) == 0
    capsys.readouterr()
    assert main(["settings", "show", "--json", "--monitor-config", conf]) == 0
    rows = {r["setting"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["loader.workers"]["version"] == 1 and rows["loader.workers"]["value"] == "3"
    assert rows["cache.policy"]["version"] is None and "cache plan --policy" in rows["cache.policy"]["jobs"]
    assert main(["settings", "set", "loader.workers", "many", "--monitor-config", conf]) == 2
    assert "not a whole number" in capsys.readouterr().err
