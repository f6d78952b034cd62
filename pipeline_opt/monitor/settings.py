"""Settings of monitoring, rollback and rollout (``conf/monitor.yml``).

Invariant: a loaded config has positive trigger ratios, non-negative durations and rollout steps that rise
strictly to 100 %.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class MonitorConfig:
    metrics_table: str = "lakehouse/_metrics"
    memory_ratio: float = 0.95
    memory_minutes: float = 5
    hit_rate_ratio: float = 0.80
    hit_rate_minutes: float = 10
    latency_ratio: float = 1.50
    latency_minutes: float = 3
    rollout_steps: list[int] = field(default_factory=lambda: [10, 25, 50, 100])
    confidence: float = 0.95
    prometheus_port: Optional[int] = None
    config_store: str = "lakehouse/_configs"
    ab_margin: float = 0.05  # candidate may be at most this share worse and still count as "not worse"
    ab_min_units: int = 20  # units per arm before a rollout stage is judged
    ab_resamples: int = 2000
    record: bool = True  # every job appends its facts to metrics_table (off: jobs record nothing)
    probe: bool = True  # a job that commits to a table times a read of it afterwards (latency.query)
    # table name → SQL queries that represent its reads, ``{table}`` standing for the table; without them the
    # probe scans the partitions the job touched (else the whole table)
    probe_queries: dict[str, list[str]] = field(default_factory=dict)

    def validate(self) -> None:
        for key in ("memory_ratio", "hit_rate_ratio", "latency_ratio"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key}: {getattr(self, key)!r} must be > 0")
        for key in ("memory_minutes", "hit_rate_minutes", "latency_minutes"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}: {getattr(self, key)!r} must be >= 0")
        steps = self.rollout_steps
        if not steps or steps != sorted(set(steps)) or steps[0] <= 0 or steps[-1] != 100:
            raise ValueError(f"rollout_steps: {steps!r} must rise strictly from above 0 and end at 100")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence: {self.confidence!r} must be in [0.5, 1)")
        if not 0 <= self.ab_margin < 1:
            raise ValueError(f"ab_margin: {self.ab_margin!r} must be in [0, 1)")
        for table, queries in self.probe_queries.items():
            if not queries or any("{table}" not in q for q in queries):
                raise ValueError(f"probe_queries[{table}]: every query must name {{table}}")
        if self.ab_min_units < 2 or self.ab_resamples < 100:
            raise ValueError(f"ab_min_units {self.ab_min_units!r} must be >= 2 and "
                             f"ab_resamples {self.ab_resamples!r} >= 100")
