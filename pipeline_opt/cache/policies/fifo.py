"""FIFO: evict the oldest admitted object; hits change nothing. The simplest baseline."""
from __future__ import annotations

from collections import OrderedDict
from typing import Hashable

from pipeline_opt.cache.policies.base import CachePolicy


class FIFO(CachePolicy):
    name = "fifo"
    entry_overhead = 24

    def __init__(self, capacity_bytes: int, **kw):
        super().__init__(capacity_bytes, **kw)
        # insertion order; popitem(last=False) is O(1), unlike a plain dict's front
        self.resident: OrderedDict[Hashable, int] = OrderedDict()

    def request(self, key, size) -> bool:
        resident = self.resident
        if key in resident:
            return True
        if not self.fits(size):
            return False
        charge = size + self.entry_overhead
        while self.used_bytes + charge > self.capacity_bytes:
            old, old_size = resident.popitem(last=False)
            self.used_bytes -= old_size + self.entry_overhead
            self._evicted.append(old)
        resident[key] = size
        self.used_bytes += charge
        return False
