"""The one config loader: every shipped file loads through its part's schema; errors name file, key and choices."""
from pathlib import Path

import pytest

from pipeline_opt.app.cli import main
from pipeline_opt.app.conf import SCHEMAS, check_conf_dir, load_conf
from pipeline_opt.config import load
from pipeline_opt.errors import ConfigError
from pipeline_opt.storage import ObjectStore
from pipeline_opt.tables.settings import TablesConfig
from pipeline_opt.training.settings import TrainingConfig
from pipeline_opt.units import ByteSize, parse_size

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_every_shipped_config_loads_through_its_schema(capsys):
    checked = check_conf_dir(CONF)
    assert sorted(Path(c.file).name for c in checked) == sorted(SCHEMAS) == sorted(p.name for p in CONF.glob("*.yml"))
    assert main(["check-config", str(CONF)]) == 0
    assert "TablesConfig" in capsys.readouterr().out


def test_shipped_configs_hold_the_documented_settings(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AK")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "SK")
    monitor = load_conf("monitor.yml", CONF)
    assert (monitor.memory_ratio, monitor.memory_minutes) == (0.95, 5)
    assert (monitor.hit_rate_ratio, monitor.hit_rate_minutes) == (0.80, 10)
    assert (monitor.latency_ratio, monitor.latency_minutes) == (1.50, 3)
    assert monitor.rollout_steps == [10, 25, 50, 100] and monitor.prometheus_port is None
    cache = load_conf("cache.yml", CONF)
    assert cache.policy == "planned" and cache.budget == 2 * 2**30
    training = load_conf("training.yml", CONF)
    assert training.model.kind == "mlp" and training.features and training.label
    assert [t.name for t in load_conf("tables.yml", CONF).tables] == ["lineitem", "orders"]
    store = load_conf("storage.yml", CONF)  # secrets never sit in the file: they come from the environment
    assert (store.endpoint, store.access_key_id, store.commit_coordination) == (None, "AK", "single-writer")


def test_a_bad_config_in_the_folder_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "tables.yml").write_text("defaults:\n  min_file_size: 16MB\n")
    (tmp_path / "cache.yml").write_text("budgett: 1GiB\n")
    assert main(["check-config", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cache.yml" in err[0] and "budgett" in err[0] and "allowed: policy" in err[0]
    (tmp_path / "cache.yml").unlink()
    (tmp_path / "other.yml").write_text("x: 1\n")
    with pytest.raises(ConfigError, match="other.yml: no schema"):
        check_conf_dir(tmp_path)


def test_storage_yaml_is_parsed_once_and_checked(tmp_path):
    bad = tmp_path / "storage.yml"
    bad.write_text("endpoint: http://127.0.0.1:9000\nregon: eu-west-1\n")
    with pytest.raises(ConfigError, match="storage.yml: unknown key 'regon'"):
        ObjectStore.from_yaml(bad, env={})
    bad.write_text("endpoint: ftp://x\n")
    with pytest.raises(ConfigError, match="storage.yml: .*ftp://x"):
        ObjectStore.from_yaml(bad, env={})
    good = tmp_path / "good.yml"
    good.write_text("region: eu-west-1\nattempts: 3\n")
    store = ObjectStore.from_yaml(good, env={"AWS_REGION": "us-east-2"})
    assert (store.region, store.attempts) == ("eu-west-1", 3)  # the file wins over the environment


@pytest.mark.parametrize("text,expected", [
    (1024, 1024), ("1024", 1024), ("16MB", 16_000_000), ("16MiB", 16 * 2**20), ("1GiB", 2**30),
    ("1 GB", 10**9), ("1.5KiB", 1536), ("128m", 128 * 2**20),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["16 parsecs", "-1", "", True, -5, "MB"])
def test_parse_size_rejects(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def _write(tmp_path, text):
    p = tmp_path / "c.yml"
    p.write_text(text)
    return p


def test_malformed_yaml_names_file_and_line(tmp_path):
    p = _write(tmp_path, "defaults:\n  min_file_size: [16MB\n")
    with pytest.raises(ConfigError, match=r"c\.yml: malformed YAML at line \d"):
        load(p, TablesConfig)


def test_unknown_key_names_key_and_allowed(tmp_path):
    p = _write(tmp_path, "defaults:\n  min_file_sise: 16MB\n")
    with pytest.raises(ConfigError) as e:
        load(p, TablesConfig)
    msg = str(e.value)
    assert "c.yml" in msg and "defaults.min_file_sise" in msg and "min_file_size" in msg


def test_bad_value_names_key(tmp_path):
    p = _write(tmp_path, "tables:\n  - name: t\n    path: p\n    max_file_size: lots\n")
    with pytest.raises(ConfigError, match=r"tables\[0\]\.max_file_size: 'lots' is not a size"):
        load(p, TablesConfig)


def test_literal_choices_are_listed(tmp_path):
    p = _write(tmp_path, "model:\n  kind: transformer\n")
    with pytest.raises(ConfigError, match="model.kind: 'transformer' is not allowed; allowed: mlp, gpt"):
        load(p, TrainingConfig)


def test_missing_required_key_and_wrong_type(tmp_path):
    with pytest.raises(ConfigError, match=r"missing required key 'tables\[0\]\.path'"):
        load(_write(tmp_path, "tables:\n  - name: t\n"), TablesConfig)
    with pytest.raises(ConfigError, match="batch_size: expected int"):
        load(_write(tmp_path, "batch_size: many\n"), TrainingConfig)


def test_cross_field_validation(tmp_path):
    p = _write(tmp_path, "defaults:\n  min_file_size: 2GB\n  max_file_size: 1GB\n")
    with pytest.raises(ConfigError, match="defaults: window min 2000000000 must be positive and at most max"):
        load(p, TablesConfig)
    p = _write(tmp_path, "tables:\n  - name: t\n    path: p\n    target_file_size: 2GB\n")
    with pytest.raises(ConfigError, match="tables.t: target 2000000000 is outside the window"):
        load(p, TablesConfig)


def test_sizes_are_typed(tmp_path):
    cfg = load(_write(tmp_path, "defaults:\n  min_file_size: 32MiB\n"), TablesConfig)
    assert isinstance(cfg.defaults.min_file_size, ByteSize) and cfg.defaults.min_file_size == 32 * 2**20
    assert cfg.defaults.max_file_size == 10**9


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load(tmp_path / "nope.yml", TablesConfig)
