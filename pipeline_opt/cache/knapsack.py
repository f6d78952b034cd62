"""Which tables to keep cached under a byte budget when their future reads are forecast.

Keeping table *t* (``b`` bytes, ``r`` reads expected within the horizon) saves ``r × b`` bytes of storage reads,
minus ``b`` for the read that fills the cache when *t* is not cached yet. Choosing the tables that save most under
the budget is a 0/1 knapsack; the greedy order by saved bytes per budget byte, compared with the best single table,
is within a factor 2 of the optimum and exact when the kept tables fill the budget.

Invariants: kept bytes never exceed the budget; pinned tables are kept first (largest saving first) as far as they
fit, excluded and unsized tables never; a table whose keeping saves nothing is not kept; every table gets its
forecast reads, its saving and the reason for the decision.
"""
from __future__ import annotations

from typing import Sequence


def _listed(table: str, names: Sequence[str]) -> bool:
    return table in names or table.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[-1] in names


def choose_by_forecast(uses: list, forecasts: dict, budget: int, cached_now: set, pins: Sequence[str] = (),
                       exclusions: Sequence[str] = ()) -> int:
    """Sets ``keep``, ``predicted_reads``, ``saved_bytes`` and ``reason`` of every ``TableUse``; returns the bytes
    the kept tables save."""
    for u in uses:
        f = forecasts.get(u.table)
        u.predicted_reads = round(f.reads, 2) if f is not None else 0.0
        fill = 0 if u.table in cached_now else u.bytes
        u.saved_bytes = int(round(u.predicted_reads * u.bytes)) - fill
        u.keep = False
        basis = f.basis if f is not None else "no forecast"
        u.reason = f"{u.predicted_reads:g} reads forecast ({basis})"
    open_ = [u for u in uses if u.bytes > 0 and not _listed(u.table, exclusions)]
    for u in uses:
        if u.bytes == 0:
            u.reason = "size unknown: never kept"
        elif _listed(u.table, exclusions):
            u.reason = "excluded in the config"
    used = 0
    for u in sorted((u for u in open_ if _listed(u.table, pins)), key=lambda u: -u.saved_bytes):
        if used + u.bytes <= budget:
            u.keep, used, u.reason = True, used + u.bytes, "pinned in the config; " + u.reason
        else:
            u.reason = "pinned, but does not fit beside the other pinned tables"
    rest = [u for u in open_ if not u.keep and not _listed(u.table, pins) and u.saved_bytes > 0]
    rest.sort(key=lambda u: (-u.saved_bytes / u.bytes, u.table))
    greedy = _fill(rest, budget - used)
    best = max((u for u in rest if u.bytes <= budget - used), key=lambda u: u.saved_bytes, default=None)
    chosen = [best] if best is not None and best.saved_bytes > sum(u.saved_bytes for u in greedy) else greedy
    for u in chosen:
        u.keep, u.reason = True, "kept: " + u.reason
    for u in rest:
        if not u.keep:
            u.reason = "does not fit the budget beside tables that save more; " + u.reason
    for u in open_:
        if not u.keep and u.saved_bytes <= 0 and not _listed(u.table, pins):
            u.reason = "keeping it saves nothing within the horizon; " + u.reason
    return sum(u.saved_bytes for u in uses if u.keep)


def _fill(ordered: list, room: int) -> list:
    out = []
    for u in ordered:
        if u.bytes <= room:
            out.append(u)
            room -= u.bytes
    return out
