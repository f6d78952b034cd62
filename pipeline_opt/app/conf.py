"""The shipped configuration files and the settings class of the part that owns each.

Invariant: every ``*.yml`` directly under ``conf/`` has a schema here and loads through the one loader
(``pipeline_opt.config``), whose errors name the file, the key and the allowed values; the Databricks job resources
under ``conf/databricks/`` are bundle YAML, validated by the Databricks bundle tooling instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_opt.cache.settings import CacheConfig
from pipeline_opt.config import load
from pipeline_opt.errors import ConfigError
from pipeline_opt.monitor.settings import MonitorConfig
from pipeline_opt.storage import ObjectStore
from pipeline_opt.tables.settings import TablesConfig
from pipeline_opt.training.settings import TrainingConfig

SCHEMAS: dict[str, type] = {
    "tables.yml": TablesConfig,
    "cache.yml": CacheConfig,
    "training.yml": TrainingConfig,
    "monitor.yml": MonitorConfig,
    "storage.yml": ObjectStore,
}


@dataclass
class CheckedConf:
    file: str
    schema: str


def load_conf(name: str, conf_dir: str | Path = "conf") -> Any:
    """Load ``conf_dir/name`` with its schema (``storage.yml`` fills what it leaves out from the environment)."""
    if name not in SCHEMAS:
        raise ConfigError(f"{name}: no schema for this file; known: {', '.join(SCHEMAS)}")
    path = Path(conf_dir) / name
    if SCHEMAS[name] is ObjectStore:
        return ObjectStore.from_yaml(path)
    return load(path, SCHEMAS[name])


def check_conf_dir(conf_dir: str | Path = "conf") -> list[CheckedConf]:
    """Load every ``*.yml`` directly under ``conf_dir``; a file without a schema is an error."""
    folder = Path(conf_dir)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such config folder")
    files = sorted(folder.glob("*.yml"))
    if not files:
        raise ConfigError(f"{folder}: holds no *.yml config")
    checked = []
    for f in files:
        load_conf(f.name, folder)
        checked.append(CheckedConf(str(f), SCHEMAS[f.name].__name__))
    return checked
