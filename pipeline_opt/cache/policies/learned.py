"""``learned``: S3-FIFO's queues with its two fixed rules replaced by an online reuse model (size-aware).

S3-FIFO decides twice per object: on a miss, whether to skip the small probation queue (a ghost hit), and when an
object leaves probation unhit, whether it is dropped. Both rules are fixed windows. Here both ask a learned estimate
of P(requested again within the horizon) — ``reuse_table.ReuseTable`` over idle time, last gap, frequency and size
— where the horizon is the time new admissions take to fill the cache. An object goes to (or stays in) the main
queue when its estimate is at least the online reuse rate of the objects S3-FIFO promotes by its own rule (those hit
during probation), times ``margin``: the model only moves objects that look as good as what main already holds.

Invariants: every label comes from requests already seen (``labels.Labeler``); until ``min_labels`` labels exist,
or if the model raises or costs more than ``slow_us`` per decision, the decisions are exactly S3-FIFO's; model
memory (table, history of evicted keys, pending samples) is reserved out of the capacity up front, so
``used_bytes <= capacity_bytes`` holds; caches too small for the reservation run as plain S3-FIFO.
"""
from __future__ import annotations

import time
from collections import OrderedDict

from pipeline_opt.cache.policies import reuse_table
from pipeline_opt.cache.policies.labels import Labeler
from pipeline_opt.cache.policies.s3fifo import S3FIFO

ADMIT, KEEP = 0, 1  # the two decisions
REFERENCE = -1  # label payload marker: an object S3-FIFO promoted by its own rule


class Learned(S3FIFO):
    name = "learned"
    entry_overhead = 49  # S3-FIFO's entry + last request time, last gap, frequency
    history_overhead = 24
    sample_bytes = 48

    def __init__(self, capacity_bytes: int, margin: float = 1.0, threshold: float | None = 0.5,
                 admit_by_model: bool = False, horizon_factor: float = 1.0,
                 min_labels: int = 500, slow_us: float = 50.0, history_fraction: float = 0.02,
                 pending_fraction: float = 0.005, **kw):
        c = int(capacity_bytes)
        self.history_max = min(1 << 20, max(64, int(c * history_fraction / self.history_overhead)))
        max_pending = min(1 << 15, max(64, int(c * pending_fraction / self.sample_bytes)))
        reserve = reuse_table.BYTES + self.history_max * self.history_overhead + max_pending * self.sample_bytes
        self.enabled = reserve <= 0.1 * c
        self.model_bytes = reserve if self.enabled else 0
        super().__init__(capacity_bytes, **kw)
        self.threshold, self.admit_by_model = threshold, admit_by_model
        self.margin, self.horizon_factor, self.min_labels, self.slow_us = margin, horizon_factor, min_labels, slow_us
        self.table = reuse_table.ReuseTable()
        self.labeler = Labeler(max_pending)
        self.meta: dict = {}  # cached key -> [last request, last gap, frequency]
        self.history: OrderedDict = OrderedDict()  # evicted key -> (last request, last gap, frequency)
        self.ref_pos = self.ref_tot = 1.0
        self.clock = 0
        self._prev = None
        self.fill_rate = 0.0
        self._admitted = 0
        self._labels: list = []
        self._decide_seconds = 0.0
        self._decisions = 0

    @property
    def trained(self) -> bool:
        return self.enabled and self.table.labels >= self.min_labels

    def request(self, key, size) -> bool:
        now = self.clock
        self.clock = now + 1
        if key in self.labeler.pending:
            self.labeler.on_request(key, now, self._labels)
            self._learn()
        if not now & 255:
            self._housekeeping(now)
        ctx = self._context(key, size)
        m = self.meta.get(key)
        if m is not None:
            m[1], m[0] = now - m[0], now
            m[2] += 1
            f = self.freq[key]
            if f < 3:
                self.freq[key] = f + 1
            return True
        past = self.history.pop(key, None)
        if not self.fits(size):
            if past is not None:
                self._remember(key, past)
            return False
        charge = size + self.entry_overhead
        while self.used_bytes + charge > self.capacity_bytes:
            self._evict_one()
        if key in self.ghost:
            self.ghost_bytes -= self.ghost.pop(key)
            self.used_bytes -= self.ghost_overhead
            self.main[key] = size
        elif past is not None and self.admit_by_model and self._wants_main(ADMIT, key, now - past[0], past[1], past[2], size, now, ctx):
            self.main[key] = size
        else:
            self.small[key] = size
            self.small_bytes += size
        self.resident[key] = size
        self.freq[key] = 0
        self.meta[key] = [now, -1, 1, ctx] if past is None else [now, now - past[0], past[2] + 1, ctx]
        self.used_bytes += charge
        self._admitted += size
        return False

    def _wants_main(self, decision: int, key, idle: int, gap: int, freq: int, size: int, now: int, ctx: int) -> bool:
        """Model decision; records a labelled sample of it. False (S3-FIFO's answer) until trained."""
        if not self.enabled or self.fill_rate <= 0:
            return False
        started = time.perf_counter()
        try:
            cell = self.table.cell(decision, idle, gap, freq, size, ctx)
            self.labeler.add(key, now, self._horizon(), cell)
            if not self.trained:
                return False
            bar = self.threshold if self.threshold is not None else self.margin * self.ref_pos / self.ref_tot
            return self.table.p(cell) >= bar
        except Exception:  # a failing model must not break the cache: S3-FIFO from here on
            self.enabled = False
            return False
        finally:
            self._decide_seconds += time.perf_counter() - started
            self._decisions += 1

    def _evict_small(self) -> None:
        key, size = self.small.popitem(last=False)
        self.small_bytes -= size
        m = self.meta[key]
        now = self.clock
        if self.freq[key] >= self.move_threshold and not self.trained:
            if self.enabled and self.fill_rate > 0:
                self.labeler.add(key, now, self._horizon(), REFERENCE)
            self.main[key] = size
            self.freq[key] = 0
        elif self._wants_main(KEEP, key, now - m[0], m[1], m[2], size, now, m[3]):
            self.main[key] = size
            self.freq[key] = 0
        else:
            self._drop(key, size)
            self.ghost[key] = size
            self.ghost_bytes += size
            self.used_bytes += self.ghost_overhead
            while self.ghost_bytes > self.ghost_target:
                self.ghost_bytes -= self.ghost.popitem(last=False)[1]
                self.used_bytes -= self.ghost_overhead

    def _context(self, key, size) -> int:
        """0: not a sequential continuation of the previous request; 1: continues a new run; 2: a re-read run.

        Block traces read runs of neighbouring keys; whether the run's previous object had been read before says
        whether this run is being re-read. Non-integer keys are always context 0.
        """
        prev, self._prev = self._prev, key
        if prev is None or not isinstance(key, int) or not 0 < key - prev <= 256:
            return 0
        pm = self.meta.get(prev)
        return 2 if pm is not None and pm[2] > 1 else 1

    def _drop(self, key, size) -> None:
        super()._drop(key, size)
        m = self.meta.pop(key)
        self._remember(key, (m[0], m[1], m[2]))

    def _remember(self, key, past) -> None:
        self.history[key] = past
        if len(self.history) > self.history_max:
            self.history.popitem(last=False)

    def _horizon(self) -> int:
        return int(self.horizon_factor * self.capacity_bytes / self.fill_rate) + 1

    def _learn(self) -> None:
        for cell, _, positive in self._labels:
            if cell == REFERENCE:
                self.ref_pos = 0.999 * self.ref_pos + positive
                self.ref_tot = 0.999 * self.ref_tot + 1.0
            else:
                self.table.update(cell, positive)
        self._labels.clear()

    def _housekeeping(self, now: int) -> None:
        rate = self._admitted / 256
        self._admitted = 0
        if rate > 0:
            self.fill_rate = rate if self.fill_rate <= 0 else 0.99 * self.fill_rate + 0.01 * rate
        self.labeler.expire(now, self._labels)
        self._learn()
        if self._decisions >= 4096:
            if 1e6 * self._decide_seconds / self._decisions > self.slow_us:
                self.enabled = False
            self._decide_seconds, self._decisions = 0.0, 0
