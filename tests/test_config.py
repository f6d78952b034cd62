from pathlib import Path

import pytest

from pipeline_opt.config import SCHEMAS, ByteSize, TablesConfig, TrainingConfig, load, load_conf, parse_size
from pipeline_opt.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"


def _object_store(path):
    from pipeline_opt.storage import ObjectStore

    return ObjectStore.from_yaml(path, env={})


# Shipped files whose schema lives above config.py (a part's own settings object).
PART_LOADERS = {"storage.yml": _object_store}


@pytest.mark.parametrize("name", sorted(p.name for p in CONF.glob("*.yml")))
def test_every_shipped_yaml_loads(name):
    if name in PART_LOADERS:
        assert PART_LOADERS[name](CONF / name) is not None
        return
    assert name in SCHEMAS, f"conf/{name} has no schema in pipeline_opt.config.SCHEMAS"
    cfg = load_conf(name, CONF)
    assert isinstance(cfg, SCHEMAS[name])


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
    with pytest.raises(ConfigError, match="min_file_size is larger than max_file_size"):
        load(p, TablesConfig)


def test_sizes_are_typed(tmp_path):
    cfg = load(_write(tmp_path, "defaults:\n  min_file_size: 32MiB\n"), TablesConfig)
    assert isinstance(cfg.defaults.min_file_size, ByteSize) and cfg.defaults.min_file_size == 32 * 2**20
    assert cfg.defaults.max_file_size == 10**9


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load(tmp_path / "nope.yml", TablesConfig)
