"""Priority-ordered eviction with a lazy heap: the shared engine of LFU and GDSF.

Invariant: ``self.prio[key]`` is each cached object's current priority; the heap may hold stale entries, which are
skipped when popped and dropped when the heap grows past twice the cache, so eviction stays O(log n) amortised.
"""
from __future__ import annotations

import heapq
from typing import Hashable

from pipeline_opt.cache.policies.base import CachePolicy


class HeapPolicy(CachePolicy):
    """Evicts the smallest ``(priority, tick)``; subclasses override ``request`` and set priorities."""

    entry_overhead = 40  # key, size, priority, heap slot

    def __init__(self, capacity_bytes: int, **kw):
        super().__init__(capacity_bytes, **kw)
        self.heap: list[tuple[float, int, Hashable]] = []  # (priority, tick, key)
        self.prio: dict[Hashable, tuple[float, int, Hashable]] = {}  # key -> its live heap entry
        self.tick = 0

    def _set(self, key, priority) -> None:
        self.tick += 1
        entry = (priority, self.tick, key)
        self.prio[key] = entry
        heapq.heappush(self.heap, entry)
        if len(self.heap) > 2 * len(self.prio) + 1024:
            self.heap = list(self.prio.values())
            heapq.heapify(self.heap)

    def _make_room(self, charge: int) -> float:
        """Evict until ``charge`` more bytes fit; returns the priority of the last victim (0 if none)."""
        last = 0.0
        heap, prio = self.heap, self.prio
        while self.used_bytes + charge > self.capacity_bytes:
            entry = heapq.heappop(heap)
            key = entry[2]
            if prio.get(key) is not entry:
                continue
            del prio[key]
            self.used_bytes -= self.resident.pop(key) + self.entry_overhead
            self._evicted.append(key)
            last = entry[0]
        return last
