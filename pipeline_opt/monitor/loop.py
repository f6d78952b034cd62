"""The report's view of the closed loop, from the real metrics table and settings store: trends per table over runs,
and each rollout with its steps and decisions (rollbacks with their reasons).

Invariant: reads only; like every section builder it says what is missing instead of failing.
"""
from __future__ import annotations

import time

import numpy as np

from pipeline_opt.monitor.controlled import SETTINGS
from pipeline_opt.monitor.metrics import MetricPoint
from pipeline_opt.monitor.sections import Section

# per table, one line per metric: what the jobs of the loop change and what judges them
TREND_METRICS = {"fact.stats.files": "files (health)", "fact.files_added": "files written (compact)",
                 "fact.share_inside_after": "share in window after compact", "latency.query": "query"}


def trends(points: list[MetricPoint]) -> Section:
    """Per table and metric: the values run after run (oldest first), and p50/p95 for query latency."""
    sec = Section("Trends per table")
    series: dict[tuple[str, str], list[MetricPoint]] = {}
    for p in points:
        if p.name in TREND_METRICS and p.labels.get("table"):
            series.setdefault((p.labels["table"], p.name), []).append(p)
    for (table, name), group in sorted(series.items()):
        values = [p.value for p in sorted(group, key=lambda p: p.ts)]
        if name == "latency.query":
            p50, p95 = np.percentile(values, [50, 95])
            shown = f"{len(values)} probes, p50 {p50:.3f} s, p95 {p95:.3f} s, last {values[-1]:.3f} s"
        else:
            shown = " → ".join(f"{v:g}" for v in values[-12:])
        sec.rows.append((f"{table}: {TREND_METRICS[name]}", shown))
    if not sec.rows:
        sec.notes.append("no per-table job metrics recorded yet (jobs record when monitoring is on)")
    return sec


def rollouts(points: list[MetricPoint], store_root: str) -> Section:
    """Each setting's latest rollout with its steps; rollbacks with their reasons."""
    from pipeline_opt.monitor.rollouts import Settings

    sec = Section("Rollouts and rollbacks")
    settings = Settings(store_root) if store_root else None
    if settings is None or not settings.store.names():
        sec.notes.append("no settings store given or found (config_store of conf/monitor.yml)")
        return sec
    for key in sorted(SETTINGS):
        state = settings.rollout(key)
        if state is None:
            continue
        sec.rows.append((f"{key}: {state.id}", f"{state.status}; active v{settings.store.head(key)} = "
                                               f"{settings.value(key)}"))
        for s in state.steps:
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(s.at))
            samples = f" ({s.n_baseline} vs {s.n_candidate} points)" if s.n_baseline or s.n_candidate else ""
            sec.rows.append((f"  {when} {s.percent:g} % {s.action}{samples}", s.reason))
    for p in points:
        if p.name == "event.rollback" and p.labels.get("setting"):
            sec.rows.append((f"rollback of {p.labels['setting']} (run {p.run_id})", p.labels.get("reason", "")))
    if not sec.rows:
        sec.notes.append("no rollout started yet (pipeline-opt rollout start KEY VALUE)")
    return sec
