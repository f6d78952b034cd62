"""``keep_resident``: CoorDL's MinIO rule for epoch-shuffled reads — fill the cache once, never evict.

With a fresh random order every epoch, any object is as likely as any other to be read soon, so replacing one
cached object by another gains nothing on average and costs a fetch; keeping whatever is resident hits about a
fraction ``x`` of the bytes at a cache of ``x`` of the working set (LRU gets about ``x²/2``).

Invariants: an object is admitted exactly when it fits beside everything cached (with its metadata); nothing is
ever evicted, so ``pop_evicted()`` is always empty and ``used_bytes <= capacity_bytes`` holds trivially.
"""
from __future__ import annotations

from pipeline_opt.cache.policies.base import CachePolicy


class KeepResident(CachePolicy):
    name = "keep_resident"
    entry_overhead = 24  # key and size: there is no eviction order to keep

    def request(self, key, size) -> bool:
        if key in self.resident:
            return True
        charge = size + self.entry_overhead
        if self.used_bytes + charge <= self.capacity_bytes:
            self.resident[key] = size
            self.used_bytes += charge
        return False
