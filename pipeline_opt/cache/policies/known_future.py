"""Belady's rule on the known part of the future, with estimates where nothing was announced.

Every cached object has a *priority*: the tick at which it is expected to be requested next. The object whose
priority is furthest away is evicted first, and a missed object is admitted only if every object it would displace
is expected later than it (bypass otherwise) — Belady's rule with bypass, sized. Priorities come from:
1. the announced plans (``KnownFuture.next_use``);
2. for keys nobody announced, the key's own last gap between requests (it recurs with that period), else the mean
   reuse gap of its table; a key of a table never seen re-read (a one-pass scan, a one-off query) gets ``INF``:
   it never displaces anything, so a table scanned once cannot push out a training table;
(Pinned and excluded tables are handled by the owner, ``planned``, in every mode.)

Invariants: ``used_bytes`` (objects + ``entry_overhead`` each + ``ghost_overhead`` per remembered gap) never
exceeds ``capacity_bytes``; the capacity may shrink between requests (the owner reserves memory for plans and a
shadow) and ``shrink()`` restores the bound; ties among ``INF`` objects evict the most recently admitted first
(a scan does not flush older objects); deterministic.
"""
from __future__ import annotations

from collections import OrderedDict
from heapq import heapify, heappop, heappush
from typing import Hashable, Iterable, Optional

from pipeline_opt.cache.future import INF, KnownFuture
from pipeline_opt.cache.policies.base import CachePolicy

TABLE_GAP_WEIGHT = 0.125
SWEEP_EVERY = 4096  # requests between full re-evaluations (drops estimates a skipped plan left behind)
REVISIT = 8  # stale heap tops re-evaluated per eviction before the top is taken as it is


class KnownFutureEviction(CachePolicy):
    """Call ``future.on_request(key)`` just before each ``request(key, size)`` (the owner keeps the clock)."""

    name = "known_future"
    entry_overhead = 48  # key, size, heap entry (priority, sequence), last request, last gap
    ghost_overhead = 24  # an evicted key's last request and gap

    def __init__(self, capacity_bytes: int, future: KnownFuture, tables: Optional[dict] = None,
                 history_fraction: float = 0.01, **kw):
        super().__init__(capacity_bytes, **kw)
        self.future = future
        self.tables = tables if tables is not None else {}  # key -> table name (shared with the owner)
        self.heap: list = []  # (-priority, -sequence, key); stale entries are skipped lazily
        self.seq = 0
        # cached key -> [last request, last gap, priority, sequence, future version]: one record per key, the last
        # three those of its valid heap entry (a hit updates the record in place)
        self.meta: dict = {}
        self.history: OrderedDict = OrderedDict()  # evicted key -> (last request, last gap)
        self.history_max = max(16, int(capacity_bytes * history_fraction / self.ghost_overhead))
        self.table_gap: dict = {}  # table -> mean gap between re-requests of its keys

    # -- estimates ---------------------------------------------------------------------------------------------
    def priority(self, key: Hashable, now: int, last: int = -1, gap: int = -1, t: Optional[float] = None) -> float:
        """Expected tick of the key's next request (larger = evicted sooner); ``t``: its announced next use."""
        if t is None:
            t = self.future.next_use(key)
        tables = self.tables
        if t == INF:
            if gap > 0:
                t = last + gap if last + gap > now else now + gap
            elif tables:
                table = tables.get(key)
                if table is not None and table in self.table_gap:
                    t = now + self.table_gap[table]
        return t

    def _push(self, key: Hashable, m: list, p: float, compact: bool = True) -> None:
        """Queue ``key`` (its record ``m``) at priority ``p``; ``compact``: the heap may be rebuilt (never while an
        eviction holds popped candidates: a rebuild from ``meta`` would queue them again, beside a stale list)."""
        self.seq = seq = self.seq + 1
        m[2], m[3], m[4] = p, seq, self.future.version
        heap = self.heap
        heappush(heap, (-p, -seq, key))
        if compact and len(heap) > 2 * len(self.meta) + 64:
            self._compact()

    def _compact(self) -> None:
        """Drop stale heap entries: the heap stays O(cached objects)."""
        self.heap = [(-m[2], -m[3], k) for k, m in self.meta.items()]
        heapify(self.heap)

    def refresh(self) -> None:
        """Re-evaluate the priorities of every cached key, and rebuild the heap from them (one heapify)."""
        future = self.future
        now, version, priority, seq = future.clock, future.version, self.priority, self.seq
        for key, m in self.meta.items():
            seq += 1
            m[2], m[3], m[4] = priority(key, now, m[0], m[1]), seq, version
        self.seq = seq
        self._compact()

    # -- requests ----------------------------------------------------------------------------------------------
    def request(self, key, size) -> bool:
        # the hot path: hits and the common misses are written out here (no helper calls), the rest in helpers
        future = self.future
        now = future.clock - 1  # the owner advanced the clock for this request
        if not now % SWEEP_EVERY:
            self.refresh()
        t = future.now_next
        m = self.meta.get(key)
        if m is not None:
            gap = now - m[0]
            m[0] = now
            m[1] = gap
            if t == INF:  # unannounced: it recurs with its last gap (``priority``'s first estimate, written out)
                self._learn_gap(key, gap)
                t = now + gap if gap > 0 else self.priority(key, now, now, gap, t)
            self.seq = seq = self.seq + 1
            m[2], m[3], m[4] = t, seq, future.version
            heap = self.heap
            heappush(heap, (-t, -seq, key))
            if len(heap) > 2 * len(self.meta) + 64:
                self._compact()
            return True
        past = self.history.pop(key, None) if self.history else None
        if past is None:
            last = gap = -1
        else:
            last, gap = now, now - past[0]
            self.used_bytes -= self.ghost_overhead
            self._learn_gap(key, gap)
        charge = size + self.entry_overhead
        if charge > self.capacity_bytes:  # never fits (``fits``, without a model)
            self._remember(key, now, gap)
            return False
        if t == INF:
            t = self.priority(key, now, last, gap, t)
        if self.used_bytes + charge > self.capacity_bytes and not self._make_room(charge, t):
            self._remember(key, now, gap)
            return False
        self.resident[key] = size
        self.seq = seq = self.seq + 1
        self.meta[key] = [now, gap, t, seq, future.version]
        self.used_bytes += charge
        heappush(self.heap, (-t, -seq, key))
        return False

    def _learn_gap(self, key: Hashable, gap: int) -> None:
        table = self.tables.get(key)
        if table is not None and gap > 0:
            g = self.table_gap.get(table)
            self.table_gap[table] = float(gap) if g is None else g + TABLE_GAP_WEIGHT * (gap - g)

    def _make_room(self, charge: int, p: float) -> bool:
        """Evicts objects expected later than ``p`` until ``charge`` fits; False (nothing evicted) if it cannot."""
        need = self.used_bytes + charge - self.capacity_bytes
        if need <= 0:
            return True
        victims: list = []
        freed = 0
        while freed < need:
            top = self._top()
            if top is None or top[0] <= p:
                for v in victims:  # bypass: put the candidates back as they were
                    heappush(self.heap, v)
                return False
            v = heappop(self.heap)
            victims.append(v)
            # an evicted key is remembered (its gap): count that ghost entry against what the eviction frees
            freed += self.resident[v[2]] + self.entry_overhead - self.ghost_overhead
        for _, _, key in victims:
            self._evict(key)
        return True

    def _top(self) -> Optional[tuple]:
        """(priority, key) of the valid heap top; a top estimated under an older future version is re-evaluated
        (up to ``REVISIT`` per call) and re-queued when it is now needed sooner."""
        heap, meta, version = self.heap, self.meta, self.future.version
        revisits = 0
        while heap:
            neg_p, neg_seq, key = heap[0]
            m = meta.get(key)
            if m is None or m[3] != -neg_seq:
                heappop(heap)
                continue
            if m[4] != version and revisits < REVISIT:
                fresh = self.priority(key, self.future.clock, m[0], m[1])
                revisits += 1
                if fresh < -neg_p:  # needed sooner than when it was queued: queue it again
                    heappop(heap)
                    self._push(key, m, fresh, compact=False)  # victims chosen so far are still in ``meta``
                    continue
                m[4] = version  # no sooner: still the furthest-needed
                return fresh, key
            return -neg_p, key
        return None

    def _evict(self, key: Hashable) -> None:
        size = self.resident.pop(key)
        m = self.meta.pop(key)
        self.used_bytes -= size + self.entry_overhead
        self._evicted.append(key)
        self._remember(key, m[0], m[1])

    def _remember(self, key: Hashable, last: int, gap: int) -> None:
        history = self.history
        if key in history:
            history.move_to_end(key)
            history[key] = (last, gap)
            return
        if len(history) >= self.history_max:
            history.popitem(last=False)
            self.used_bytes -= self.ghost_overhead
        if self.used_bytes + self.ghost_overhead <= self.capacity_bytes:
            history[key] = (last, gap)
            self.used_bytes += self.ghost_overhead

    # -- owner hooks -------------------------------------------------------------------------------------------
    def shrink(self) -> None:
        """Evict (history first, then furthest-needed objects) until ``used_bytes <= capacity_bytes``."""
        while self.used_bytes > self.capacity_bytes and self.history:
            self.history.popitem(last=False)
            self.used_bytes -= self.ghost_overhead
        while self.used_bytes > self.capacity_bytes and self.resident:
            top = self._top()
            assert top is not None  # cached keys always have a valid heap entry
            heappop(self.heap)
            self._evict(top[1])

    def seed(self, residents: Iterable[tuple]) -> None:
        """Adopt ``(key, size)`` objects as cached (they are on disk already); ``shrink()`` if they may not fit."""
        now = self.future.clock
        for key, size in residents:
            self.resident[key] = size
            self.meta[key] = m = [now, -1, 0.0, 0, 0]
            self.used_bytes += size + self.entry_overhead
            self._push(key, m, self.priority(key, now))

    def ordered(self) -> list:
        """Cached ``(key, size)`` pairs, the furthest-needed first."""
        now = self.future.clock
        return sorted(self.resident.items(), key=lambda kv: -self.priority(kv[0], now, *self.meta[kv[0]][:2]))

    def metadata_bytes(self) -> int:
        return len(self.resident) * self.entry_overhead + len(self.history) * self.ghost_overhead
