"""S3-FIFO (Yang et al., SOSP'23): a small FIFO filters one-hit objects, a main FIFO with reinsertion keeps the rest.

Byte-sized variant: the small queue holds about ``small_fraction`` of the cache bytes; a ghost FIFO remembers recently
evicted keys of the small queue up to ``ghost_fraction`` of the cache bytes (as libCacheSim does), and a ghost hit
admits straight to main; each remembered key costs ``ghost_overhead`` bytes.
Frequencies saturate at 3; an object leaving the small queue moves to main when it was hit there at least
``move_threshold`` times.
"""
from __future__ import annotations

from collections import OrderedDict

from pipeline_opt.cache.policies.base import CachePolicy


class S3FIFO(CachePolicy):
    name = "s3fifo"
    entry_overhead = 33  # key, size, list links, 2-bit frequency

    def __init__(self, capacity_bytes: int, small_fraction: float = 0.1, move_threshold: int = 1,
                 ghost_fraction: float = 0.9, **kw):
        super().__init__(capacity_bytes, **kw)
        self.small: OrderedDict = OrderedDict()  # key -> size, oldest first
        self.main: OrderedDict = OrderedDict()
        self.ghost: OrderedDict = OrderedDict()  # key -> size
        self.ghost_bytes = 0
        self.ghost_target = ghost_fraction * capacity_bytes
        self.freq: dict = {}
        self.small_bytes = 0
        self.small_target = small_fraction * capacity_bytes
        self.move_threshold = move_threshold

    def request(self, key, size) -> bool:
        freq = self.freq
        if key in freq:
            f = freq[key]
            if f < 3:
                freq[key] = f + 1
            return True
        if self.fits(size):
            self._insert(key, size)
        return False

    def _insert(self, key, size) -> None:
        """Admit a missed object: into main if its ghost is remembered, else into the small queue."""
        charge = size + self.entry_overhead
        while self.used_bytes + charge > self.capacity_bytes:
            self._evict_one()
        if key in self.ghost:
            self.ghost_bytes -= self.ghost.pop(key)
            self.used_bytes -= self.ghost_overhead
            self.main[key] = size
        else:
            self.small[key] = size
            self.small_bytes += size
        self.resident[key] = size
        self.freq[key] = 0
        self.used_bytes += charge

    def _evict_one(self) -> None:
        if not self.small and not self.main:  # only remembered keys hold bytes (an owner shrank the capacity)
            self.ghost_bytes -= self.ghost.popitem(last=False)[1]
            self.used_bytes -= self.ghost_overhead
            return
        if self.small and (self.small_bytes >= self.small_target or not self.main):
            self._evict_small()
        else:
            self._evict_main()

    def _evict_small(self) -> None:
        key, size = self.small.popitem(last=False)
        self.small_bytes -= size
        if self._moves_to_main(key, size):
            self.main[key] = size
            self.freq[key] = 0
            return
        self._drop(key, size)
        self.ghost[key] = size
        self.ghost_bytes += size
        self.used_bytes += self.ghost_overhead
        while self.ghost_bytes > self.ghost_target:
            self.ghost_bytes -= self.ghost.popitem(last=False)[1]
            self.used_bytes -= self.ghost_overhead

    def _moves_to_main(self, key, size) -> bool:
        """S3-FIFO's rule: an object read again while in the small queue earns a place in main."""
        return self.freq[key] >= self.move_threshold

    def _evict_main(self) -> None:
        main, freq = self.main, self.freq
        while True:
            key, size = main.popitem(last=False)
            f = freq[key]
            if f == 0:
                self._drop(key, size)
                return
            freq[key] = f - 1
            main[key] = size

    def _drop(self, key, size) -> None:
        del self.resident[key]
        del self.freq[key]
        self.used_bytes -= size + self.entry_overhead
        self._evicted.append(key)
