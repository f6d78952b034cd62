"""CPU per request of each cache policy as a ratio to LRU's, measured side by side in one process.

Used by ``benchmarks/cache.py`` (product workloads and block traces); not run on its own.

On a machine shared with other jobs, absolute µs per request move with the load; a ratio to LRU measured right
next to it moves much less. Each repeat replays LRU and then every policy on the same requests at the same size
(``simulate.replay``: CPU time of this process, announcements and table tags included for policies that take
plans); the ratio of a point is the median over the repeats of policy seconds / the same repeat's LRU seconds.
"""
from __future__ import annotations

import statistics

from pipeline_opt.cache import policies
from pipeline_opt.cache.simulate import replay
from pipeline_opt.cache.trace import Trace
from pipeline_opt.cache.workload import Workload


def point_ratios(trace: Trace, names: list[str], fraction: float, repeats: int) -> dict:
    """policy -> median over ``repeats`` interleaved repeats of (its CPU seconds / LRU's) at ``fraction``."""
    keys, sizes = trace.keys.tolist(), trace.sizes.tolist()
    capacity = max(1, int(trace.working_set_bytes * fraction))
    workload = trace if isinstance(trace, Workload) else None
    ratios: dict = {name: [] for name in names}
    for _ in range(repeats):
        lru = replay(policies.make("lru", capacity), keys, sizes, workload)[2]
        for name in names:
            seconds = replay(policies.make(name, capacity), keys, sizes, workload)[2]
            ratios[name].append(seconds / max(lru, 1e-9))
    return {name: statistics.median(v) for name, v in ratios.items()}


def cpu_over_lru(traces: list, names: list[str], fractions: list[float], repeats: int = 5) -> dict:
    """Per point (``trace @ fraction``) and per policy the interleaved median ratio, and each policy's median over
    the points."""
    points: dict = {}
    for t in traces:
        for f in fractions:
            points[f"{t.name} @ {f}"] = point_ratios(t, names, f, repeats)
    median = {name: statistics.median(p[name] for p in points.values()) for name in names}
    return {"repeats": repeats, "fractions": fractions, "points": points, "median_over_points": median}
