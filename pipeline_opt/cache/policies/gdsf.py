"""GDSF (Cherkasova '98): Greedy-Dual-Size-Frequency, priority = L + frequency / size.

``L`` (the inflation value) rises to each victim's priority, so long-idle objects age out. Small, popular objects win:
GDSF aims at the object miss ratio, usually at some cost in byte miss ratio.
"""
from __future__ import annotations

from pipeline_opt.cache.policies.heapq_policy import HeapPolicy


class GDSF(HeapPolicy):
    name = "gdsf"

    def __init__(self, capacity_bytes: int, **kw):
        super().__init__(capacity_bytes, **kw)
        self.freq: dict = {}
        self.inflation = 0.0

    def request(self, key, size) -> bool:
        if key in self.resident:
            f = self.freq[key] + 1
            self.freq[key] = f
            self._set(key, self.inflation + f / size)
            return True
        if not self.fits(size):
            return False
        charge = size + self.entry_overhead
        mark = len(self._evicted)
        self.inflation = max(self.inflation, self._make_room(charge))
        for old in self._evicted[mark:]:
            del self.freq[old]
        self.resident[key] = size
        self.freq[key] = 1
        self._set(key, self.inflation + 1 / size)
        self.used_bytes += charge
        return False
