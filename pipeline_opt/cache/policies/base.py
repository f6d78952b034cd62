"""The cache-policy contract every registered policy keeps.

Invariants, checked by one contract test over every registered policy:
- ``used_bytes <= capacity_bytes`` after every request, where ``used_bytes`` counts the cached objects' bytes plus the
  policy's own metadata (``entry_overhead`` per cached object, ``ghost_overhead`` per remembered evicted key, and any
  fixed ``model_bytes`` a learned policy reserves);
- ``request(key, size)`` returns True exactly when ``key`` was cached before the call (a hit);
- ``pop_evicted()`` returns, in order, the keys evicted since its last call; an evicted key is no longer ``in`` the
  policy unless a later request re-admitted it.

``request`` is the one override point: a policy decides there what to admit and what to evict.
"""
from __future__ import annotations

from typing import Hashable

from pipeline_opt.errors import PipelineOptError


class CachePolicyError(PipelineOptError):
    """A policy was asked for by an unknown name or built with an impossible capacity."""


class CachePolicy:
    """Base class: resident objects live in ``self.resident`` (key → size); subclasses override ``request``."""

    name = "base"
    entry_overhead = 32  # bytes per cached object: key, size, list links
    ghost_overhead = 16  # bytes per remembered evicted key
    model_bytes = 0

    def __init__(self, capacity_bytes: int, entry_overhead: int | None = None, ghost_overhead: int | None = None):
        if int(capacity_bytes) <= 0:
            raise CachePolicyError(f"capacity_bytes must be positive, got {capacity_bytes!r}")
        self.capacity_bytes = int(capacity_bytes)
        if entry_overhead is not None:
            self.entry_overhead = int(entry_overhead)
        if ghost_overhead is not None:
            self.ghost_overhead = int(ghost_overhead)
        self.resident: dict = {}
        self.used_bytes = self.model_bytes
        self._evicted: list = []
        if self.model_bytes >= self.capacity_bytes:
            raise CachePolicyError(f"{self.name}: capacity {capacity_bytes} B cannot hold its "
                                   f"{self.model_bytes} B model")

    def request(self, key: Hashable, size: int) -> bool:  # pragma: no cover - the override point
        raise NotImplementedError

    def __contains__(self, key: Hashable) -> bool:
        return key in self.resident

    def __len__(self) -> int:
        return len(self.resident)

    def pop_evicted(self) -> list:
        """Keys evicted since the last call, oldest first."""
        out, self._evicted = self._evicted, []
        return out

    def fits(self, size: int) -> bool:
        """Whether an object of ``size`` bytes could ever be cached (it and its metadata fit in an empty cache)."""
        return size + self.entry_overhead + self.model_bytes <= self.capacity_bytes

    def __repr__(self) -> str:
        return f"{type(self).__name__}(capacity_bytes={self.capacity_bytes}, used_bytes={self.used_bytes})"
