"""One call for a job to get its recorder (and, optionally, its rollback guard) from ``conf/monitor.yml``.

Invariant: nothing here decides policy — it only builds the objects the config names: a recorder appending to
``metrics_table``, a Prometheus endpoint on 127.0.0.1 when ``prometheus_port`` is set, and a guard over the
versioned config ``name`` in ``config_store`` against a saved baseline.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from pipeline_opt.monitor.metrics import Recorder
from pipeline_opt.monitor.prometheus import PrometheusExporter, PrometheusServer
from pipeline_opt.monitor.rollback import Baseline, RollbackGuard
from pipeline_opt.monitor.settings import MonitorConfig
from pipeline_opt.monitor.store import DeltaSink
from pipeline_opt.monitor.versions import ConfigStore


def recorder_for(job: str, config: Optional[MonitorConfig] = None) -> Recorder:
    """A recorder for ``job``; its Prometheus server, if any, is ``recorder.prometheus`` (``close()`` stops it)."""
    config = config or MonitorConfig()
    recorder = Recorder(job=job, sinks=[DeltaSink(config.metrics_table)])
    if config.prometheus_port is not None:
        exporter = PrometheusExporter()
        recorder.listeners.append(exporter)
        recorder.prometheus = PrometheusServer(exporter, config.prometheus_port).start()
    return recorder


def guard_for(name: str, recorder: Recorder, baseline: str | Path | Baseline,
              config: Optional[MonitorConfig] = None) -> RollbackGuard:
    """Watches ``recorder`` and reverts config ``name`` in the config store when a trigger fires."""
    config = config or MonitorConfig()
    base = baseline if isinstance(baseline, Baseline) else Baseline.load(baseline)
    return RollbackGuard(ConfigStore(config.config_store), name, base, config, recorder=recorder)
