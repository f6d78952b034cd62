"""Lower bounds on the miss ratio from offline optima.

- ``belady`` — exact OPT for unit sizes: evict the object requested furthest in the future.
- ``fractional_belady`` — the tight bound on the *byte* miss ratio for variable sizes: Belady on the request
  sequence expanded to single bytes (an object of ``s`` bytes is ``s`` unit objects requested together). Any real
  policy keeps whole objects, which is one schedule of those unit objects, so it misses at least as many bytes;
  unlike PFOO-L it respects the capacity at every moment, not only on average over the trace.
- ``pfoo_l`` — a PFOO-L-style bound for variable sizes (Berger et al., SIGMETRICS'18). Caching object *i* from one
  request to its next costs ``size × interval`` of the cache-time resource ``capacity × T``; any real schedule stays
  within that resource, so the best fractional choice of intervals bounds every policy from below. For the byte miss
  ratio an interval's value is its size, so the greedy order (value per cost) is by interval length; for the object
  miss ratio the value is 1 and the order is by ``size × length`` as in PFOO-L.
"""
from __future__ import annotations

import heapq

import numpy as np

from pipeline_opt.cache.trace import Trace, next_use


def pfoo_l(trace: Trace, capacity_bytes: int, byte: bool = True) -> float:
    """Lower bound on the byte (or object) miss ratio of any policy with ``capacity_bytes`` bytes."""
    n = len(trace)
    nxt = next_use(trace.keys)
    reused = np.flatnonzero(nxt < n)
    sizes = trace.sizes[reused].astype(np.float64)
    length = (nxt[reused] - reused).astype(np.float64)
    cost = sizes * length
    value = sizes if byte else np.ones_like(sizes)
    order = np.argsort(length if byte else cost, kind="stable")
    budget = float(capacity_bytes) * n
    spent = np.cumsum(cost[order])
    k = int(np.searchsorted(spent, budget, side="right"))
    gained = float(value[order][:k].sum())
    if k < len(order):  # the fractional part of the first interval that does not fit
        left = budget - (spent[k - 1] if k else 0.0)
        gained += value[order][k] * left / cost[order][k]
    total = float(trace.sizes.sum()) if byte else float(n)
    return float(max(0.0, 1.0 - gained / total))


def belady(trace: Trace, capacity_objects: int) -> float:
    """Exact OPT miss ratio for unit-size objects and a cache of ``capacity_objects`` (bypass allowed)."""
    n = len(trace)
    if capacity_objects <= 0:
        return 1.0
    nxt = next_use(trace.keys).tolist()
    keys = trace.keys.tolist()
    cached: dict = {}  # key -> its next request index
    heap: list = []  # (-next index, key), lazily invalidated
    misses = 0
    for i, key in enumerate(keys):
        if key not in cached:
            misses += 1
            if len(cached) >= capacity_objects:
                while -heap[0][0] != cached.get(heap[0][1]):
                    heapq.heappop(heap)  # stale entry
                if -heap[0][0] <= nxt[i]:
                    continue  # bypass: the new object is needed no sooner than every cached one
                del cached[heapq.heappop(heap)[1]]
        cached[key] = nxt[i]
        heapq.heappush(heap, (-nxt[i], key))
    return misses / n


def fractional_belady(trace: Trace, capacity_bytes: int) -> float:
    """Lower bound on the byte miss ratio: OPT of fractional caching (bytes of an object may be kept in part).

    On each request the object's missing bytes are counted, the whole object is held, and bytes of the objects
    needed furthest in the future (possibly the requested one: bypass) are dropped until the capacity holds.
    """
    n = len(trace)
    nxt = next_use(trace.keys).tolist()
    keys, sizes = trace.keys.tolist(), trace.sizes.tolist()
    cached: dict = {}  # key -> [bytes held, next request index]
    heap: list = []  # (-next index, key), lazily invalidated
    used = missed = 0
    for i, (key, size) in enumerate(zip(keys, sizes)):
        held = cached.get(key)
        have = 0 if held is None else held[0]
        missed += size - have
        used += size - have
        if nxt[i] >= n:  # never requested again: keeping any of it gains nothing
            used -= size
            cached.pop(key, None)
            continue
        cached[key] = [size, nxt[i]]
        heapq.heappush(heap, (-nxt[i], key))
        while used > capacity_bytes:
            neg, victim = heap[0]
            entry = cached.get(victim)
            if entry is None or entry[1] != -neg:
                heapq.heappop(heap)  # stale entry
                continue
            drop = min(entry[0], used - capacity_bytes)
            entry[0] -= drop
            used -= drop
            if not entry[0]:
                heapq.heappop(heap)
                del cached[victim]
    return missed / max(1, int(trace.sizes.sum()))


def lower_bound(trace: Trace, capacity_bytes: int) -> dict:
    """Byte-miss-ratio bound: Belady when every object has one size, fractional Belady otherwise."""
    sizes = trace.sizes
    if int(sizes.min()) == int(sizes.max()):
        return {"method": "belady", "byte_miss_ratio": belady(trace, capacity_bytes // int(sizes[0]))}
    return {"method": "fractional-belady", "byte_miss_ratio": fractional_belady(trace, capacity_bytes)}
