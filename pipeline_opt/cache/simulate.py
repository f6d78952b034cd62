"""Replay a trace through cache policies; report object and byte miss ratios, speed, and the offline bound.

Invariant: every policy sees the same requests in the same order, and a request counts as a hit exactly when the
policy's ``request`` says so; cache sizes are fractions of the trace's working set in bytes. A ``Workload`` also
carries plans: policies that take plans get every announcement just before the request it precedes, and each
file's table up front; the time of those calls counts in ``us_per_request``, which is CPU time of this process
(``time.process_time``), so other jobs on a shared machine slow it less than wall time.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from pipeline_opt.cache import plans, policies
from pipeline_opt.cache.bounds import lower_bound
from pipeline_opt.cache.trace import Trace
from pipeline_opt.cache.workload import Workload
from pipeline_opt.errors import PipelineOptError


@dataclass
class PolicyResult:
    policy: str
    size_fraction: float
    cache_bytes: int
    object_miss_ratio: float
    byte_miss_ratio: float
    us_per_request: float


@dataclass
class BoundResult:
    size_fraction: float
    byte_miss_ratio: float


@dataclass
class SimulationReport:
    trace: str
    requests: int
    working_set_bytes: int
    results: list[PolicyResult] = field(default_factory=list)
    bound: list[BoundResult] = field(default_factory=list)

    def render(self) -> str:
        from pipeline_opt.output import render_table, to_jsonable

        head = f"{self.trace}: {self.requests} requests, working set {self.working_set_bytes} bytes"
        return "\n".join([head, render_table(to_jsonable(self.results)), "lower bound (offline):",
                          render_table(to_jsonable(self.bound))])


def replay(policy, keys: list, sizes: list, workload: Workload | None = None) -> tuple[int, int, float]:
    """Requests every key (announcing ``workload``'s plans on the way); returns (missed requests, missed bytes,
    seconds)."""
    request = policy.request
    misses = missed_bytes = 0
    start = time.process_time()
    events = _plan_events(policy, workload)
    for lo, hi, event in zip([0, *[e[0] for e in events]], [*[e[0] for e in events], len(keys)], [*events, None]):
        for i in range(lo, hi):
            size = sizes[i]
            if not request(keys[i], size):
                misses += 1
                missed_bytes += size
            if not i & 0xFFFF:
                policy.pop_evicted()  # the simulator has no use for them; keep the list short
        if event is not None:
            plans.announce(policy, *event[1:])
    return misses, missed_bytes, time.process_time() - start


def _plan_events(policy, workload: Workload | None) -> list:
    """[(request index, source name, keys, start_after)] for a policy that takes plans (tables tagged first)."""
    if workload is None or not plans.supports_plans(policy):
        return []
    for t, name in enumerate(workload.table_names):
        plans.tag(policy, [int(k) for k in (workload.file_tables == t).nonzero()[0]], name)
    return [(a.at, workload.source_names[a.source], a.keys, a.start_after)
            for a in sorted(workload.announcements, key=lambda a: a.at)]


def simulate(trace: Trace, policy_names: list[str], fractions: list[float], bound: bool = True,
             options: dict | None = None) -> SimulationReport:
    """Runs each policy at each size; ``options`` maps a policy name to extra constructor arguments."""
    for f in fractions:
        if not 0 < f <= 1:
            raise PipelineOptError(f"cache size fraction {f} is not in (0, 1]")
    for name in policy_names:
        policies.policy_class(name)  # fail on an unknown name before any replay
    ws = trace.working_set_bytes
    keys, sizes = trace.keys.tolist(), trace.sizes.tolist()
    total_bytes = sum(sizes)
    report = SimulationReport(trace.name, len(keys), ws)
    for f in fractions:
        cache_bytes = max(1, int(ws * f))
        for name in policy_names:
            policy = policies.make(name, cache_bytes, **(options or {}).get(name, {}))
            misses, missed_bytes, seconds = replay(policy, keys, sizes,
                                                   trace if isinstance(trace, Workload) else None)
            report.results.append(PolicyResult(name, f, cache_bytes, misses / len(keys), missed_bytes / total_bytes,
                                               1e6 * seconds / len(keys)))
        if bound:
            b = lower_bound(trace, cache_bytes)
            report.bound.append(BoundResult(f, b["byte_miss_ratio"]))
    return report
