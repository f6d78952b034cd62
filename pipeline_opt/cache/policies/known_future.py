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
        # key -> the entry its latest hit made, not yet in the heap: pushed (``_flush``) before the heap is next
        # read, so a key hit several times between evictions is pushed once
        self.queued: dict = {}
        self.seq = 0
        # cached key -> [last request, last gap, its valid heap entry, the future version of that estimate]: one
        # record per key (a hit updates it in place); a heap entry is valid exactly when it *is* its key's
        # record's entry, and a compaction rebuilds the heap from those entries. The pop order depends only on the
        # valid entries (sequences are unique), not on when they were pushed
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
        m[2] = entry = (-p, -seq, key)
        m[3] = self.future.version
        heap = self.heap
        heappush(heap, entry)
        if compact and len(heap) > 2 * len(self.meta) + 64:
            self._compact()

    def _compact(self) -> None:
        """Drop stale heap entries: the heap stays O(cached objects)."""
        self.heap = [m[2] for m in self.meta.values()]
        heapify(self.heap)
        self.queued.clear()  # every valid entry is in the heap now

    def _flush(self) -> None:
        """Push the entries hits queued (before the heap is read; never while an eviction holds candidates)."""
        queued = self.queued
        if queued:
            heap = self.heap
            for entry in queued.values():
                heappush(heap, entry)
            queued.clear()
            if len(heap) > 2 * len(self.meta) + 64:
                self._compact()

    def refresh(self) -> None:
        """Re-evaluate the priorities of every cached key, and rebuild the heap from them (one heapify)."""
        future = self.future
        now, version, next_use, seq = future.clock, future.version, future.next_use, self.seq
        tables, table_gap = self.tables, self.table_gap
        for key, m in self.meta.items():
            seq += 1
            t = next_use(key)
            if t == INF:  # ``priority``, written out
                last, gap = m[0], m[1]
                if gap > 0:
                    t = last + gap if last + gap > now else now + gap
                elif tables:
                    table = tables.get(key)
                    if table is not None and table in table_gap:
                        t = now + table_gap[table]
            m[2], m[3] = (-t, -seq, key), version
        self.seq = seq
        self._compact()

    # -- requests ----------------------------------------------------------------------------------------------
    def request(self, key, size) -> bool:
        # the hot path: hits and the common misses are written out here (few helper calls), the rest in helpers
        future = self.future
        now = future.clock - 1  # the owner advanced the clock for this request
        if not now % SWEEP_EVERY:
            self.refresh()
        t = future.now_next
        m = self.meta.get(key)
        if m is not None:
            gap = now - m[0]
            if t == INF:  # unannounced: it recurs with its last gap (``priority``'s first estimate, written out)
                if gap > 0:
                    self._learn_gap(key, gap)
                    t = now + gap
                else:
                    t = self.priority(key, now, now, gap, t)
            self.seq = seq = self.seq + 1
            m[0] = now  # one store per field: faster than a slice or tuple assignment
            m[1] = gap
            m[2] = entry = (-t, -seq, key)
            m[3] = future.version
            self.queued[key] = entry  # pushed at the next eviction (``_flush``)
            return True
        history = self.history
        past = history.pop(key, None) if history else None
        if past is None:
            last = gap = -1
        else:
            last, gap = now, now - past[0]
            self.used_bytes -= self.ghost_overhead
            if gap > 0:  # ``_learn_gap``, written out
                table = self.tables.get(key)
                if table is not None:
                    table_gap = self.table_gap
                    g = table_gap.get(table)
                    table_gap[table] = float(gap) if g is None else g + TABLE_GAP_WEIGHT * (gap - g)
        charge = size + self.entry_overhead
        capacity = self.capacity_bytes
        if charge > capacity:  # never fits (``fits``, without a model)
            self._remember(key, now, gap)
            return False
        if t == INF:
            t = self.priority(key, now, last, gap, t)
        if self.used_bytes + charge > capacity and not self._make_room(charge, t):
            self._remember(key, now, gap)
            return False
        self.resident[key] = size
        self.seq = seq = self.seq + 1
        entry = (-t, -seq, key)
        self.meta[key] = [now, gap, entry, future.version]
        self.used_bytes += charge
        heappush(self.heap, entry)
        return False

    def _learn_gap(self, key: Hashable, gap: int) -> None:
        """Fold a re-request's ``gap`` (> 0) into its table's mean reuse gap."""
        table = self.tables.get(key)
        if table is not None:
            g = self.table_gap.get(table)
            self.table_gap[table] = float(gap) if g is None else g + TABLE_GAP_WEIGHT * (gap - g)

    def _make_room(self, charge: int, p: float) -> bool:
        """Evicts objects expected later than ``p`` until ``charge`` fits; False (nothing evicted) if it cannot."""
        need = self.used_bytes + charge - self.capacity_bytes
        if need <= 0:
            return True
        self._flush()
        heap, meta, resident, version = self.heap, self.meta, self.resident, self.future.version
        # an evicted key is remembered (its gap): count that ghost entry against what the eviction frees
        net = self.entry_overhead - self.ghost_overhead
        victims: list = []
        freed = 0
        while freed < need:
            if heap:  # a valid top estimated under the current version is taken as it is (``_top``, written out)
                v = heap[0]
                m = meta.get(v[2])
                if m is not None and m[2] is v and m[3] == version:
                    if -v[0] <= p:
                        break
                    heappop(heap)
                    victims.append(v)
                    freed += resident[v[2]] + net
                    continue
            top = self._top()
            if top is None or top[0] <= p:
                break
            v = heappop(heap)
            victims.append(v)
            freed += resident[v[2]] + net
        else:
            evicted, overhead, history, ghost = self._evicted, self.entry_overhead, self.history, self.ghost_overhead
            capacity, used = self.capacity_bytes, self.used_bytes
            for _, _, key in victims:  # ``_evict`` and ``_remember``, written out
                m = meta.pop(key)
                used -= resident.pop(key) + overhead
                evicted.append(key)
                if key in history:
                    history.move_to_end(key)
                    history[key] = (m[0], m[1])
                    continue
                if len(history) >= self.history_max:
                    history.popitem(last=False)
                    used -= ghost
                if used + ghost <= capacity:
                    history[key] = (m[0], m[1])
                    used += ghost
            self.used_bytes = used
            return True
        for v in victims:  # bypass: put the candidates back as they were
            heappush(heap, v)
        return False

    def _top(self) -> Optional[tuple]:
        """(priority, key) of the valid heap top; a top estimated under an older future version is re-evaluated
        (up to ``REVISIT`` per call) and re-queued when it is now needed sooner."""
        heap, meta, version = self.heap, self.meta, self.future.version
        revisits = 0
        while heap:
            v = heap[0]
            key = v[2]
            m = meta.get(key)
            if m is None or m[2] is not v:
                heappop(heap)
                continue
            if m[3] != version and revisits < REVISIT:
                fresh = self.priority(key, self.future.clock, m[0], m[1])
                revisits += 1
                if fresh < -v[0]:  # needed sooner than when it was queued: queue it again
                    heappop(heap)
                    self._push(key, m, fresh, compact=False)  # victims chosen so far are still in ``meta``
                    continue
                m[3] = version  # no sooner: still the furthest-needed
                return fresh, key
            return -v[0], key
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
        self._flush()
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
            self.meta[key] = m = [now, -1, None, 0]
            self.used_bytes += size + self.entry_overhead
            self._push(key, m, self.priority(key, now))

    def ordered(self) -> list:
        """Cached ``(key, size)`` pairs, the furthest-needed first."""
        now = self.future.clock
        return sorted(self.resident.items(), key=lambda kv: -self.priority(kv[0], now, *self.meta[kv[0]][:2]))

    def metadata_bytes(self) -> int:
        return len(self.resident) * self.entry_overhead + len(self.history) * self.ghost_overhead
