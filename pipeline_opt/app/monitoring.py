"""Whether monitoring is on, with which settings, and on which clock.

Monitoring is on when ``conf/monitor.yml`` (or the file ``$PIPELINE_OPT_MONITOR`` names; ``off`` turns it off) sets
``record: true`` and its ``metrics_table`` lies in an existing lakehouse (a local metrics table's parent folder must
exist; an object-store URI always counts), so a checkout without a lakehouse records nothing.

Invariants: a named config that is missing is one ``ConfigError``; a config file is parsed once per content in a
process, and each caller gets its own copy; ``CLOCK`` is the time of every point
and decision, so a test that sets it (or runs jobs inside ``monitoring``) drives them all.
"""

from __future__ import annotations

import copy
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

from pipeline_opt.config import load
from pipeline_opt.errors import ConfigError
from pipeline_opt.monitor.settings import MonitorConfig

ENV = "PIPELINE_OPT_MONITOR"
DEFAULT_CONF = Path("conf/monitor.yml")
CLOCK: Callable[[], float] = time.time  # the time of every point and decision (a test sets a simulated clock)

_PARSED: dict[tuple[str, bytes], MonitorConfig] = {}  # (path, its bytes) → the config they hold


def monitor_config(base_dir: Optional[str] = None) -> Optional[MonitorConfig]:
    """The monitor settings in force, or None when monitoring is off. With ``base_dir`` (a job's ``--base-dir``,
    against which its relative table paths resolve) relative metrics and settings locations resolve against it too:
    they live beside the tables (the bundle's jobs run elsewhere than the folder their config names)."""
    named = os.environ.get(ENV, "").strip()
    if named.lower() == "off":
        return None
    path = Path(named) if named else DEFAULT_CONF
    if not path.is_file():
        if named:
            raise ConfigError(f"{ENV}={named}: no such monitor config")
        return None
    config = _parsed(path)
    if base_dir:
        config.metrics_table, config.config_store = (
            _beside(str(base_dir), config.metrics_table),
            _beside(str(base_dir), config.config_store),
        )
    if not config.record or not _in_lakehouse(config.metrics_table):
        return None
    return config


def monitor_settings(path: Optional[str] = None) -> MonitorConfig:
    """The monitor config for the commands that manage settings: ``path``, else the one in force, else defaults."""
    named = path or os.environ.get(ENV, "").strip()
    if named and named.lower() != "off":
        return load(named, MonitorConfig)
    return load(DEFAULT_CONF, MonitorConfig) if DEFAULT_CONF.is_file() else MonitorConfig()


@contextmanager
def monitoring(conf: str | Path, clock: Optional[Callable[[], float]] = None) -> Iterator[None]:
    """Jobs run inside record per the monitor config ``conf`` (and on ``clock``); the previous state comes back."""
    global CLOCK
    before, before_clock = os.environ.get(ENV), CLOCK
    os.environ[ENV], CLOCK = str(conf), clock or CLOCK
    try:
        yield
    finally:
        CLOCK = before_clock
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def location_options(location: str) -> Optional[dict]:
    """The object store's options for a metrics table or settings store on S3 (None for a local one)."""
    if "://" not in location:
        return None
    from pipeline_opt.app.selection import storage_options

    return storage_options(location)


def _parsed(path: Path) -> MonitorConfig:
    # every job of a scheduler or notebook process reads the same file: parse (YAML, checks) once per content;
    # keyed by the bytes, not the modification time, which two quick rewrites can share
    key = (str(path.absolute()), path.read_bytes())
    if key not in _PARSED:
        _PARSED.clear()
        _PARSED[key] = load(path, MonitorConfig)
    return copy.deepcopy(_PARSED[key])


def _beside(base: str, location: str) -> str:
    if "://" in location or os.path.isabs(location):
        return location
    return f"{base.rstrip('/')}/{location}"


def _in_lakehouse(location: str) -> bool:
    return "://" in location or Path(location).absolute().parent.is_dir()
