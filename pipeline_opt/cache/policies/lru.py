"""LRU: evict the least recently requested object. Admits every object that fits."""
from __future__ import annotations

from collections import OrderedDict
from typing import Hashable

from pipeline_opt.cache.policies.base import CachePolicy


class LRU(CachePolicy):
    name = "lru"

    def __init__(self, capacity_bytes: int, **kw):
        super().__init__(capacity_bytes, **kw)
        self.resident: OrderedDict[Hashable, int] = OrderedDict()

    def request(self, key, size) -> bool:
        resident = self.resident
        if key in resident:
            resident.move_to_end(key)
            return True
        if not self.fits(size):
            return False
        charge = size + self.entry_overhead
        cap, overhead, evicted = self.capacity_bytes, self.entry_overhead, self._evicted
        while self.used_bytes + charge > cap:
            old, old_size = resident.popitem(last=False)
            self.used_bytes -= old_size + overhead
            evicted.append(old)
        resident[key] = size
        self.used_bytes += charge
        return False
