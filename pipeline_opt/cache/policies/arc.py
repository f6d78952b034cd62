"""ARC (Megiddo & Modha, FAST'03) in bytes: recency list T1, frequency list T2, ghost lists B1/B2 steer the split.

The target ``p`` is the byte share of T1. Ghost lists remember evicted keys with their sizes; they are bounded as in
ARC (|T1|+|B1| <= c and the total <= 2c, in bytes) and each remembered key costs ``ghost_overhead`` bytes of the
cache.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Hashable

from pipeline_opt.cache.policies.base import CachePolicy


class ARC(CachePolicy):
    name = "arc"
    entry_overhead = 33

    def __init__(self, capacity_bytes: int, **kw):
        super().__init__(capacity_bytes, **kw)
        # key -> size: T1 and T2 hold the cached objects, B1 and B2 the ghosts
        self.t1: OrderedDict[Hashable, int] = OrderedDict()
        self.t2: OrderedDict[Hashable, int] = OrderedDict()
        self.b1: OrderedDict[Hashable, int] = OrderedDict()
        self.b2: OrderedDict[Hashable, int] = OrderedDict()
        self.t1_bytes = self.t2_bytes = self.b1_bytes = self.b2_bytes = 0
        self.p = 0.0

    def request(self, key, size) -> bool:
        if key in self.t1:
            self.t1_bytes -= self.t1.pop(key)
            self.t2[key] = size
            self.t2_bytes += size
            return True
        if key in self.t2:
            self.t2.move_to_end(key)
            return True
        if not self.fits(size):
            return False
        c = self.capacity_bytes
        if key in self.b1:
            self.p = min(c, self.p + max(self.b2_bytes / max(self.b1_bytes, 1), 1) * size)
            self._forget(self.b1, key, 1)
            self._admit(key, size, self.t2, in_b2=False)
        elif key in self.b2:
            self.p = max(0.0, self.p - max(self.b1_bytes / max(self.b2_bytes, 1), 1) * size)
            self._forget(self.b2, key, 2)
            self._admit(key, size, self.t2, in_b2=True)
        else:
            while self.t1_bytes + self.b1_bytes + size > c and self.b1:
                self._forget(self.b1, next(iter(self.b1)), 1)
            while self.t1_bytes + self.t2_bytes + self.b1_bytes + self.b2_bytes + size > 2 * c and self.b2:
                self._forget(self.b2, next(iter(self.b2)), 2)
            self._admit(key, size, self.t1, in_b2=False)
        return False

    def _admit(self, key, size, into: OrderedDict, in_b2: bool) -> None:
        charge = size + self.entry_overhead
        while self.used_bytes + charge > self.capacity_bytes:
            self._replace(in_b2)
        into[key] = size
        if into is self.t1:
            self.t1_bytes += size
        else:
            self.t2_bytes += size
        self.resident[key] = size
        self.used_bytes += charge

    def _replace(self, in_b2: bool) -> None:
        """Evict one object to its ghost list; if nothing is cached, shed ghosts (metadata) instead."""
        if self.t1 and (self.t1_bytes > self.p or (in_b2 and self.t1_bytes >= self.p) or not self.t2):
            key, size = self.t1.popitem(last=False)
            self.t1_bytes -= size
            self.b1[key] = size
            self.b1_bytes += size
        elif self.t2:
            key, size = self.t2.popitem(last=False)
            self.t2_bytes -= size
            self.b2[key] = size
            self.b2_bytes += size
        else:
            ghosts, which = (self.b1, 1) if len(self.b1) >= len(self.b2) else (self.b2, 2)
            self._forget(ghosts, next(iter(ghosts)), which)
            return
        del self.resident[key]
        self.used_bytes += self.ghost_overhead - size - self.entry_overhead
        self._evicted.append(key)

    def _forget(self, ghosts: OrderedDict, key, which: int) -> None:
        size = ghosts.pop(key)
        if which == 1:
            self.b1_bytes -= size
        else:
            self.b2_bytes -= size
        self.used_bytes -= self.ghost_overhead
