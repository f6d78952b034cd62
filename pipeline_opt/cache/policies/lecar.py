"""LeCaR (Vietri et al., HotStorage'18): regret minimisation between LRU and LFU experts.

On each eviction the policy picks LRU's or LFU's victim with probability given by the experts' weights; the victim
goes to that expert's history. A later miss on a key in an expert's history means that expert erred: its weight is
multiplied by ``exp(-learning_rate · discount^age)``. Histories hold as many keys as the cache (by count) and cost
``ghost_overhead`` bytes each.
"""
from __future__ import annotations

import heapq
import math
import random
from collections import OrderedDict
from typing import Hashable

from pipeline_opt.cache.policies.base import CachePolicy


class LeCaR(CachePolicy):
    name = "lecar"
    entry_overhead = 48  # key, size, recency links, frequency, heap slot

    def __init__(self, capacity_bytes: int, learning_rate: float = 0.45, seed: int = 0, **kw):
        super().__init__(capacity_bytes, **kw)
        self.recency: OrderedDict = OrderedDict()  # key -> size, least recent first
        self.freq: dict = {}
        self.heap: list = []  # (frequency, tick, key), lazily invalidated
        # LRU's and LFU's evicted keys -> (eviction time, frequency)
        self.hist: tuple[OrderedDict[Hashable, tuple[int, int]], OrderedDict[Hashable, tuple[int, int]]] = (
            OrderedDict(), OrderedDict())
        self.w = [0.5, 0.5]
        self.learning_rate = learning_rate
        self.rng = random.Random(seed)
        self.time = 0

    def request(self, key, size) -> bool:
        self.time += 1
        if key in self.recency:
            self.recency.move_to_end(key)
            f = self.freq[key] + 1
            self.freq[key] = f
            heapq.heappush(self.heap, (f, self.time, key))
            return True
        if not self.fits(size):
            return False
        f = 1
        for expert in (0, 1):
            past = self.hist[expert].pop(key, None)
            if past is not None:
                self.used_bytes -= self.ghost_overhead
                f = past[1] + 1
                self._regret(expert, self.time - past[0])
        charge = size + self.entry_overhead
        while self.used_bytes + charge > self.capacity_bytes:
            self._evict_one()
        self.recency[key] = size
        self.resident[key] = size
        self.freq[key] = f
        heapq.heappush(self.heap, (f, self.time, key))
        self.used_bytes += charge
        if len(self.heap) > 4 * len(self.freq) + 1024:
            self.heap = [(f, 0, k) for k, f in self.freq.items()]
            heapq.heapify(self.heap)
        return False

    def _regret(self, expert: int, age: int) -> None:
        discount = 0.005 ** (1.0 / max(len(self.recency), 1))
        self.w[expert] *= math.exp(-self.learning_rate * discount ** age)
        total = self.w[0] + self.w[1]
        self.w = [self.w[0] / total, self.w[1] / total]

    def _lfu_victim(self):
        heap, freq = self.heap, self.freq
        while True:
            f, _, key = heap[0]
            if freq.get(key) == f:
                return key
            heapq.heappop(heap)

    def _evict_one(self) -> None:
        if not self.recency:  # only history left: shed it
            expert = 0 if self.hist[0] else 1
            self.hist[expert].popitem(last=False)
            self.used_bytes -= self.ghost_overhead
            return
        lru_key = next(iter(self.recency))
        lfu_key = self._lfu_victim()
        expert = 0 if self.rng.random() < self.w[0] else 1
        key = lru_key if expert == 0 else lfu_key
        size = self.recency.pop(key)
        del self.resident[key]
        f = self.freq.pop(key)
        self._evicted.append(key)
        self.used_bytes -= size + self.entry_overhead
        if lru_key != lfu_key:  # both experts agreeing teaches nothing
            hist = self.hist[expert]
            hist[key] = (self.time, f)
            self.used_bytes += self.ghost_overhead
            while len(hist) > max(len(self.recency), 1):
                hist.popitem(last=False)
                self.used_bytes -= self.ghost_overhead
