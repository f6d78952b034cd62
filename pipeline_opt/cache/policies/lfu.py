"""LFU: evict the least frequently requested cached object (ties: the least recently requested)."""
from __future__ import annotations

from pipeline_opt.cache.policies.heapq_policy import HeapPolicy


class LFU(HeapPolicy):
    name = "lfu"

    def __init__(self, capacity_bytes: int, **kw):
        super().__init__(capacity_bytes, **kw)
        self.freq: dict = {}

    def request(self, key, size) -> bool:
        if key in self.resident:
            f = self.freq[key] + 1
            self.freq[key] = f
            self._set(key, f)
            return True
        if not self.fits(size):
            return False
        charge = size + self.entry_overhead
        mark = len(self._evicted)
        self._make_room(charge)
        for old in self._evicted[mark:]:
            del self.freq[old]
        self.resident[key] = size
        self.freq[key] = 1
        self._set(key, 1)
        self.used_bytes += charge
        return False
