"""CPU per request of each cache policy as a ratio to LRU's, measured side by side in one process.

Used by ``benchmarks/cache.py`` (product workloads and block traces); not run on its own.

On a machine shared with other jobs, absolute µs per request move with the load; a ratio to LRU measured right
next to it moves much less. Each repeat replays LRU and then every policy on the same requests at the same size
(``simulate.replay``: CPU time of this process, announcements and table tags included for policies that take
plans); the ratio of a point is the median over the repeats of policy seconds / the same repeat's LRU seconds.

That ratio still moves with the machine's load (the same code measured 10.7x and 7.8x LRU on two days), too much to
judge a change of a few per cent. ``opcodes_over_lru`` is its load-free companion: the bytecode instructions the
interpreter executes per request (``sys.settrace`` opcode events, replay loop included, as in the timed ratio),
policy over LRU. It is deterministic, so two versions of a policy compare exactly; it does not see work done inside
C functions (dict, heapq, OrderedDict), so it understates a policy that leans on them less than LRU does.
"""
from __future__ import annotations

import statistics
import sys
from collections import Counter

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


def opcodes(trace: Trace, name: str, fraction: float, by_function: Counter | None = None) -> int:
    """Bytecode instructions executed while ``name`` replays ``trace`` at ``fraction`` of its working set;
    ``by_function`` (if given) gains the count of each function, by qualified name."""
    keys, sizes = trace.keys.tolist(), trace.sizes.tolist()
    policy = policies.make(name, max(1, int(trace.working_set_bytes * fraction)))
    workload = trace if isinstance(trace, Workload) else None
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        if event == "opcode":
            count += 1
            if by_function is not None:
                by_function[frame.f_code.co_qualname] += 1
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        replay(policy, keys, sizes, workload)
    finally:
        sys.settrace(previous)
    return count


def opcodes_over_lru(traces: list, names: list[str], fractions: list[float]) -> dict:
    """Per point and per policy its bytecode instructions over LRU's on the same requests, and the median over the
    points (deterministic: no repeats needed)."""
    points: dict = {}
    for t in traces:
        for f in fractions:
            lru = opcodes(t, "lru", f)
            points[f"{t.name} @ {f}"] = {name: opcodes(t, name, f) / lru for name in names}
    median = {name: statistics.median(p[name] for p in points.values()) for name in names}
    return {"fractions": fractions, "points": points, "median_over_points": median}


def opcodes_by_function(trace: Trace, names: list[str], fraction: float) -> dict:
    """Per policy its instructions per request at one point, split by function (where a policy's work goes)."""
    out = {}
    for name in names:
        counts: Counter = Counter()
        opcodes(trace, name, fraction, counts)
        out[name] = {f: round(n / len(trace), 1) for f, n in counts.most_common()}
    return out
