"""Metric points from what a job returned: its JSON facts, one record per table.

Invariants: reads only the JSON form of a result (``output.to_jsonable``, the same facts ``--json`` prints), so a
job needs no code to be recorded; a result that is a list (one result per configured table) gives one record per
item; every finite number (booleans as 0/1) at the top of a record or one level down becomes ``fact.<key>``
(``fact.<outer>.<inner>``), and the keys in ``CANONICAL`` also become the fixed metric names the rollback triggers
and the report look for; lists inside a record are skipped (samples, per-partition rows) — their sizes are not
facts a job chose to report.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from pipeline_opt.output import to_jsonable

# fact key (regex, full match) → fixed metric name; what triggers and the report rely on.
CANONICAL = {
    r"duration_s|seconds": "job.seconds",
    r"rows_per_s": "throughput.rows_per_s",
    r"tokens_per_s": "throughput.tokens_per_s",
    r"hit_rate": "cache.hit_rate",
    r"byte_hit_rate": "cache.byte_hit_rate",
    r"peak_(allocated_)?bytes|peak_allocated": "memory.gpu_peak_bytes",
    r"peak_reserved(_bytes)?": "memory.gpu_reserved_bytes",
    r"ooms?|oom_step_downs|oom_count": "event.oom",
    r"probe_s|query_s": "latency.query",
}
_TABLE_KEYS = ("table", "path", "dest")


@dataclass
class Record:
    """The facts of one table (or of the whole run, ``table == ""``)."""

    table: str  # its name (the ``table`` fact), else the last part of its path
    facts: dict[str, float] = field(default_factory=dict)
    location: str = ""  # its path or URI, where the result names one


def records(result: Any, default_table: str = "") -> list[Record]:
    """One record per table the result speaks of (a list result: one per item)."""
    data = to_jsonable(result)
    items = data if isinstance(data, list) else [data]
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        location = str(item["path"]) if isinstance(item.get("path"), str) else ""
        out.append(Record(_table_of(item, default_table), flat_numbers(item), location))
    return out


def flat_numbers(data: dict, depth: int = 2) -> dict[str, float]:
    """Finite numbers of ``data`` and of the mappings directly inside it, keyed ``a`` or ``a.b``."""
    out: dict[str, float] = {}
    for key, value in data.items():
        n = _number(value)
        if n is not None:
            out[str(key)] = n
        elif isinstance(value, dict) and depth > 1:
            out.update({f"{key}.{k}": v for k, v in flat_numbers(value, depth - 1).items()})
    return out


def canonical(key: str) -> Optional[str]:
    """The fixed metric name of fact ``key`` (its last part decides), or None."""
    last = key.rsplit(".", 1)[-1]
    return next((name for pattern, name in CANONICAL.items() if re.fullmatch(pattern, last)), None)


def _table_of(item: dict, default: str) -> str:
    for key in _TABLE_KEYS:
        if isinstance(item.get(key), str) and item[key]:
            return str(item[key]).rstrip("/").rsplit("/", 1)[-1] or item[key]
    return default


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None
