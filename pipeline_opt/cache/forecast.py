"""Which tables will be read within a horizon, and how often: the known future of Spark table caching.

Two sources, as the product knows them: the job schedule (``ScheduledRead``: a table some job reads every
``every_hours``) and recurrence in the access log (a table read at least twice recurs with its mean gap between
reads, as Spark event logs show). A scheduled table's forecast comes from the schedule; any other table from its
recurrence; a table read once in the log is forecast to be read no more.

Invariants: a pure function of the accesses, the schedule, the horizon and ``now`` (default: the log's last read);
``reads`` is the expected number of reads in ``[now, now + horizon]``, never negative.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from pipeline_opt.cache.access_log import Access

HOUR_MS = 3_600_000


@dataclass
class ScheduledRead:
    table: str
    every_hours: float
    location: str = ""

    def validate(self) -> None:
        if not 0 < self.every_hours < float("inf"):  # NaN fails too
            raise ValueError(f"schedule: {self.table}: every_hours must be a positive finite number, "
                             f"got {self.every_hours!r}")


@dataclass
class TableForecast:
    table: str
    location: str
    reads: float  # expected reads within the horizon
    basis: str  # "schedule", "recurrence" or "read once"
    period_hours: Optional[float] = None


def forecast(accesses: Sequence[Access], horizon_hours: float, schedule: Sequence[ScheduledRead] = (),
             now_ms: Optional[int] = None) -> dict[str, TableForecast]:
    """Expected reads of every table in the log or the schedule within ``horizon_hours`` after ``now_ms``."""
    horizon_ms = horizon_hours * HOUR_MS
    times: dict[str, list[int]] = {}
    where: dict[str, str] = {}
    for a in accesses:
        times.setdefault(a.table, []).append(a.time_ms)
        where.setdefault(a.table, a.location)
    now = max((t for ts in times.values() for t in ts), default=0) if now_ms is None else now_ms
    out: dict[str, TableForecast] = {}
    for table, ts in times.items():
        ts.sort()
        if len(ts) < 2 or ts[-1] == ts[0]:
            out[table] = TableForecast(table, where[table], 0.0, "read once")
            continue
        gap = (ts[-1] - ts[0]) / (len(ts) - 1)
        due = max(gap - max(now - ts[-1], 0), 0)  # the next read is due one gap after the last (now, if overdue)
        reads = float(int((horizon_ms - due) // gap) + 1) if due <= horizon_ms else 0.0
        out[table] = TableForecast(table, where[table], reads, "recurrence", gap / HOUR_MS)
    for s in schedule:
        reads = horizon_hours / s.every_hours
        out[s.table] = TableForecast(s.table, s.location or where.get(s.table, ""), reads, "schedule", s.every_hours)
    return out
