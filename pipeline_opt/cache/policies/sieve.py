"""SIEVE (Zhang et al., NSDI'24): a FIFO whose hand sweeps from old to new, sparing objects hit since its last pass.

New objects enter at the head; the hand keeps its place between evictions, which is what separates SIEVE from
CLOCK's reinsertion. The queue is a doubly linked list of small lists ``[key, size, visited, newer, older]``.
"""
from __future__ import annotations

from typing import Any, Optional

from pipeline_opt.cache.policies.base import CachePolicy

_Node = list[Any]  # [key, size, visited, newer node or None, older node or None]
_KEY, _SIZE, _VISITED, _NEWER, _OLDER = range(5)


class SIEVE(CachePolicy):
    name = "sieve"
    entry_overhead = 33

    def __init__(self, capacity_bytes: int, **kw):
        super().__init__(capacity_bytes, **kw)
        self.nodes: dict = {}
        self.head: Optional[_Node] = None  # newest node
        self.tail: Optional[_Node] = None  # oldest node
        self.hand: Optional[_Node] = None

    def request(self, key, size) -> bool:
        node = self.nodes.get(key)
        if node is not None:
            node[_VISITED] = True
            return True
        if not self.fits(size):
            return False
        charge = size + self.entry_overhead
        while self.used_bytes + charge > self.capacity_bytes:
            self._evict_one()
        node = [key, size, False, None, self.head]
        if self.head is not None:
            self.head[_NEWER] = node
        self.head = node
        if self.tail is None:
            self.tail = node
        self.nodes[key] = node
        self.resident[key] = size
        self.used_bytes += charge
        return False

    def _evict_one(self) -> None:
        tail = self.tail
        assert tail is not None, "evicting from an empty SIEVE"  # callers evict only while something is cached
        node: _Node = self.hand or tail
        while node[_VISITED]:
            node[_VISITED] = False
            node = node[_NEWER] or tail
        self.hand = node[_NEWER]
        self._unlink(node)
        key = node[_KEY]
        del self.nodes[key]
        del self.resident[key]
        self.used_bytes -= node[_SIZE] + self.entry_overhead
        self._evicted.append(key)

    def _unlink(self, node) -> None:
        newer, older = node[_NEWER], node[_OLDER]
        if newer is not None:
            newer[_OLDER] = older
        else:
            self.head = older
        if older is not None:
            older[_NEWER] = newer
        else:
            self.tail = newer
