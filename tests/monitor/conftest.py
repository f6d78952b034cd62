"""A lakehouse with monitoring switched on for the jobs of one test, and small real Delta tables."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml

from pipeline_opt.app import monitoring
from pipeline_opt.monitor.rollback import SimulatedClock


@pytest.fixture
def monitored(tmp_path, monkeypatch):
    """``(lakehouse, write_conf)``: jobs of this test record into ``lakehouse/_metrics``; ``write_conf(**keys)``
    rewrites the monitor config (defaults: the shipped ones with this lakehouse's paths)."""
    lakehouse = tmp_path / "lakehouse"
    lakehouse.mkdir()
    conf = tmp_path / "monitor.yml"

    def write_conf(**keys) -> Path:
        base = {"metrics_table": str(lakehouse / "_metrics"), "config_store": str(lakehouse / "_settings")}
        conf.write_text(yaml.safe_dump({**base, **keys}))
        return conf

    write_conf()
    monkeypatch.setenv(monitoring.ENV, str(conf))
    return lakehouse, write_conf


@pytest.fixture
def clock(monkeypatch):
    """The simulated clock of every point and decision the jobs of this test make."""
    sim = SimulatedClock(1_780_000_000.0)
    monkeypatch.setattr(monitoring, "CLOCK", sim)
    return sim


def small_files_table(path: Path, files: int = 6, rows: int = 200) -> Path:
    """A real Delta table of ``files`` small files (one append each), written by delta-rs."""
    from deltalake import write_deltalake

    rng = np.random.default_rng(files)
    for i in range(files):
        write_deltalake(str(path), pa.table({"id": np.arange(i * rows, (i + 1) * rows),
                                             "x": rng.normal(size=rows)}), mode="append")
    return path
