"""Orders that meet the cache half way: a loader that, within a window of its next files, reads a cached one first.

The "substitutable hits" of CoorDL and Quiver: an epoch must read every file once, in any order, so a loader may
take a cached file from the next ``window`` files of its order before the file that is due. This can beat the
offline bound of the fixed order; the price is shuffle quality, which the caller measures on the delivered orders
(``pipeline_opt.loader.shuffle_quality``) beside the seeded order's.

Invariants: only loader sources reorder (scans and ad-hoc reads keep their order), and only within one epoch
(each epoch still reads each of its files exactly once); the interleaving of sources (which source makes the i-th
request) is the workload's; ``window=0`` replays the fixed order exactly; plans are announced as recorded (a loader
that reorders makes its own plan wrong, and the policy has to cope).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from pipeline_opt.cache import plans
from pipeline_opt.cache.workload import Workload


@dataclass
class SubstitutedRun:
    missed_bytes: int
    total_bytes: int
    orders: dict = field(default_factory=dict)  # (source, epoch) -> (seeded order, delivered order), file ids

    @property
    def byte_miss_ratio(self) -> float:
        return self.missed_bytes / max(1, self.total_bytes)


def epochs_of(workload: Workload, source: int) -> list:
    """The source's requests cut into epochs: an epoch ends just before its first repeated file."""
    out: list = []
    current: list = []
    seen: set = set()
    for key in workload.keys[workload.sources == source].tolist():
        if key in seen:
            out.append(current)
            current, seen = [], set()
        current.append(key)
        seen.add(key)
    if current:
        out.append(current)
    return out


def replay_substituting(policy, workload: Workload, window: int) -> SubstitutedRun:
    loaders = [i for i, n in enumerate(workload.source_names) if n.startswith("loader")]
    queues = {s: deque(deque(e) for e in epochs_of(workload, s)) for s in loaders}
    epoch_no = dict.fromkeys(loaders, 0)
    orders: dict = {}
    events = workload.announcements_at()
    for t, name in enumerate(workload.table_names):
        plans.tag(policy, [int(k) for k in (workload.file_tables == t).nonzero()[0]], name)
    sizes = workload.file_sizes.tolist()
    missed = total = 0
    for i, (key, source) in enumerate(zip(workload.keys.tolist(), workload.sources.tolist())):
        for a in events.get(i, ()):
            plans.announce(policy, workload.source_names[a.source], a.keys, a.start_after)
        if source in queues:
            key = _next_file(policy, queues[source], window, source, epoch_no, orders)
        size = sizes[key]
        total += size
        if not policy.request(key, size):
            missed += size
        policy.pop_evicted()
    return SubstitutedRun(missed, total, orders)


def _next_file(policy, epochs: deque, window: int, source: int, epoch_no: dict, orders: dict) -> int:
    """The first cached file among the epoch's next ``window`` files, else the file that is due."""
    current = epochs[0]
    record = orders.setdefault((source, epoch_no[source]), (list(current), []))
    pick = 0
    for j in range(min(window, len(current))):
        if current[j] in policy:
            pick = j
            break
    key = current[pick]
    del current[pick]
    record[1].append(key)
    if not current:  # the epoch is read: the next one starts
        epochs.popleft()
        epoch_no[source] += 1
    return key
