"""A model of PyTorch's CUDA caching allocator: what a sequence of allocations reserves, not only what it uses.

Invariants (the rules of ``c10/cuda/CUDACachingAllocator.cpp`` with default settings — no ``max_split_size_mb``,
no expandable segments, one stream, no memory pressure): a request is rounded up to a multiple of 512 bytes;
requests up to 1 MiB come from the small pool, whose segments are 2 MiB; larger ones from the large pool, whose
segments are 20 MiB for requests under 10 MiB and the request rounded up to 2 MiB otherwise; a request takes the
smallest free block of its pool that is large enough (lowest address on ties) and splits it when what remains is at
least 512 bytes (small pool) or more than 1 MiB (large pool) — otherwise the whole block counts as allocated; a
freed block merges with free neighbours of its segment; segments are never returned (``reserved`` only grows).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Iterable, Optional

MIN_BLOCK = 512
SMALL_SIZE = 1 << 20
SMALL_BUFFER = 2 << 20
LARGE_BUFFER = 20 << 20
MIN_LARGE_ALLOC = 10 << 20
ROUND_LARGE = 2 << 20


def round_size(size: int) -> int:
    return MIN_BLOCK if size < MIN_BLOCK else MIN_BLOCK * -(-size // MIN_BLOCK)


def segment_size(size: int) -> int:
    if size <= SMALL_SIZE:
        return SMALL_BUFFER
    if size < MIN_LARGE_ALLOC:
        return LARGE_BUFFER
    return ROUND_LARGE * -(-size // ROUND_LARGE)


@dataclass
class _Block:
    ptr: int
    size: int
    small: bool
    prev: Optional["_Block"] = None
    next: Optional["_Block"] = None
    allocated: bool = False


@dataclass
class CachingAllocator:
    """Replays ``malloc(key, nbytes)`` / ``free(key)``; ``reserved`` and ``allocated`` (with peaks) as CUDA's
    allocator counts them."""

    allocated: int = 0
    reserved: int = 0
    peak_allocated: int = 0
    peak_reserved: int = 0
    _free: dict = field(default_factory=lambda: {True: [], False: []})  # pool -> sorted [(size, ptr)]
    _blocks: dict = field(default_factory=dict)  # ptr -> block
    _live: dict = field(default_factory=dict)    # key -> block
    _top: int = 0

    def malloc(self, key, nbytes: int) -> None:
        if nbytes <= 0:
            return
        size = round_size(nbytes)
        small = size <= SMALL_SIZE
        block = self._take(size, small) or self._new_segment(size, small)
        remaining = block.size - size
        if remaining >= MIN_BLOCK if small else remaining > SMALL_SIZE:
            rest = _Block(block.ptr + size, remaining, small, block, block.next)
            if block.next:
                block.next.prev = rest
            block.next, block.size = rest, size
            self._blocks[rest.ptr] = rest
            self._insert(rest)
        block.allocated = True
        self._live[key] = block
        self.allocated += block.size
        self.peak_allocated = max(self.peak_allocated, self.allocated)

    def free(self, key) -> None:
        block = self._live.pop(key, None)
        if block is None:
            return
        block.allocated = False
        self.allocated -= block.size
        for neighbour in (block.prev, block.next):
            if neighbour is not None and not neighbour.allocated:
                self._remove(neighbour)
                block = self._merge(block, neighbour)
        self._insert(block)

    def reset_peaks(self) -> None:
        self.peak_allocated, self.peak_reserved = self.allocated, self.reserved

    def _take(self, size: int, small: bool) -> Optional[_Block]:
        pool = self._free[small]
        i = bisect.bisect_left(pool, (size, -1))
        if i == len(pool):
            return None
        _, ptr = pool.pop(i)
        return self._blocks[ptr]

    def _new_segment(self, size: int, small: bool) -> _Block:
        seg = segment_size(size)
        block = _Block(self._top, seg, small)
        self._top += seg + ROUND_LARGE  # a gap: blocks of different segments never merge
        self._blocks[block.ptr] = block
        self.reserved += seg
        self.peak_reserved = max(self.peak_reserved, self.reserved)
        return block

    def _merge(self, a: _Block, b: _Block) -> _Block:
        first, second = (a, b) if a.ptr < b.ptr else (b, a)
        first.size += second.size
        first.next = second.next
        if second.next:
            second.next.prev = first
        del self._blocks[second.ptr]
        return first

    def _insert(self, block: _Block) -> None:
        bisect.insort(self._free[block.small], (block.size, block.ptr))

    def _remove(self, block: _Block) -> None:
        pool = self._free[block.small]
        i = bisect.bisect_left(pool, (block.size, block.ptr))
        if i < len(pool) and pool[i] == (block.size, block.ptr):
            pool.pop(i)


def replay(events: Iterable[tuple[int, object, int]], allocator: Optional[CachingAllocator] = None):
    """Replay ``(+1, key, nbytes)`` allocations and ``(-1, key, _)`` frees; returns the allocator."""
    allocator = allocator or CachingAllocator()
    for kind, key, nbytes in events:
        if kind > 0:
            allocator.malloc(key, nbytes)
        else:
            allocator.free(key)
    return allocator
