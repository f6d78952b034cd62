"""``learned``: S3-FIFO's queues, with its probation rule replaced by an online reuse model where that wins.

S3-FIFO decides, when an object leaves the small probation queue, whether it moves to the main queue (it was hit
during probation) or is dropped. That fixed rule is where it loses to the offline optimum: objects hit once and never
again are kept, objects that come back a little later are dropped. Here the decision asks a learned estimate of
P(requested again within the horizon) — ``reuse_table.ReuseTable`` over idle time, last gap, frequency, size and
request neighbourhood, learned from labelled samples of earlier decisions — where the horizon is the time new
admissions take to fill the cache; the object moves to main when the estimate is at least ``threshold``.

Whether the model or S3-FIFO's rule decides, and at which threshold, is itself chosen online by a duel of shadow
caches (metadata only) of a ``1/shadow_ratio`` share of the capacity, fed the same spatially sampled
``1/shadow_ratio`` of the keys (as in SHARDS): one follows S3-FIFO's rule, the others the model at each of
``thresholds``; the live cache follows whichever missed fewer bytes recently. So where the model does not help, the
cache behaves like S3-FIFO. Shadow metadata is reserved like the model's.

Invariants: every label comes from requests already seen (``labels.Labeler``); until ``min_labels`` labels exist, or
if the model raises or costs more than ``slow_us`` per decision, every decision is S3-FIFO's; model memory (table,
history of evicted keys, pending samples) is reserved out of the capacity up front, so ``used_bytes <=
capacity_bytes`` holds; caches too small for the reservation run as plain S3-FIFO.
"""
from __future__ import annotations

import time
import zlib
from collections import OrderedDict

from pipeline_opt.cache.policies import reuse_table
from pipeline_opt.cache.policies.labels import FillRate, Labeler
from pipeline_opt.cache.policies.s3fifo import S3FIFO

KEEP = 0  # the decision kind in the reuse table (the only one used)


class Learned(S3FIFO):
    name = "learned"
    entry_overhead = 49  # S3-FIFO's entry + last request time, last gap, frequency, neighbourhood
    history_overhead = 24
    sample_bytes = 48

    def __init__(self, capacity_bytes: int, threshold: float = 0.5, horizon_factor: float = 1.0,
                 min_labels: int = 500, slow_us: float = 50.0, history_fraction: float = 0.005,
                 pending_fraction: float = 0.0025, duel: bool = True, shadow_ratio: int = 4,
                 shadow_fraction: float = 0.005, thresholds: tuple = (0.35, 0.5, 0.65), duel_margin: float = 0.97,
                 rescue_cap: float = 0.1, shadow_of: "Learned | None" = None, **kw):
        c = int(capacity_bytes)
        self.history_max = min(1 << 20, max(64, int(c * history_fraction / self.history_overhead)))
        max_pending = min(1 << 15, max(64, int(c * pending_fraction / self.sample_bytes)))
        reserve = (reuse_table.BYTES + self.history_max * self.history_overhead + max_pending * self.sample_bytes
                   + int(shadow_fraction * c * duel))
        self.enabled = reserve <= 0.15 * c or shadow_of is not None
        self.model_bytes = reserve if self.enabled and shadow_of is None else 0
        super().__init__(capacity_bytes, **kw)
        self.threshold, self.horizon_factor = threshold, horizon_factor
        self.min_labels, self.slow_us = min_labels, slow_us
        self.owner = shadow_of
        self.rescue_cap = rescue_cap
        self.rescued: dict = {}  # objects in main only because the model kept them, until their first hit there
        self.rescued_bytes = 0
        self.table: reuse_table.ReuseTable = shadow_of.table if shadow_of is not None else reuse_table.ReuseTable()
        self.labeler = Labeler(0 if shadow_of is not None else max_pending)
        self.shadows = None
        if duel and self.enabled and shadow_of is None:
            # the shadows hold keys and sizes only: ~64 bytes per entry, within the reserved shadow budget
            virtual = max(1, c // shadow_ratio)
            self.shadows = [S3FIFO(virtual, entry_overhead=self.entry_overhead)]
            self.shadows += [Learned(virtual, t, duel=False, shadow_of=self) for t in thresholds]
            self.thresholds, self.duel_margin = tuple(thresholds), duel_margin
            self.shadow_ratio = shadow_ratio
            self.shadow_missed = [1.0] * len(self.shadows)  # bytes missed, decayed: S3-FIFO's, then each threshold's
            self.leader = 0
        self.meta: dict = {}  # cached key -> [last request, last gap, frequency, neighbourhood]
        self.history: OrderedDict = OrderedDict()  # evicted key -> (last request, last gap, frequency)
        self.clock = 0
        self.fill = FillRate()
        self._prev = None
        self._labels: list = []
        self._decide_seconds = 0.0
        self._decisions = 0

    @property
    def trained(self) -> bool:
        return self.enabled and self.table.labels >= self.min_labels

    @property
    def model_leads(self) -> bool:
        """Whether a model shadow has missed fewer bytes than S3-FIFO's shadow, recently (always without a duel)."""
        return self.shadows is None or self.leader > 0

    def request(self, key, size) -> bool:
        if self.owner is not None:  # a shadow keeps the live cache's clock, so the model's features agree
            now = self.clock = self.owner.clock - 1
        else:
            now = self.clock
        self.clock = now + 1
        if key in self.labeler.pending:
            self.labeler.on_request(key, now, self._labels)
            self._learn()
        if self.shadows is not None and not _group(key) % self.shadow_ratio:
            for i, shadow in enumerate(self.shadows):
                if not shadow.request(key, size):
                    self.shadow_missed[i] += size
                shadow._evicted.clear()
            self._follow_leader()
        if not now & 255:
            self._housekeeping(now)
        ctx = self._context(key)
        m = self.meta.get(key)
        if m is not None:
            m[1], m[0] = now - m[0], now
            m[2] += 1
            if key in self.rescued:
                self.rescued_bytes -= self.rescued.pop(key)
            f = self.freq[key]
            if f < 3:
                self.freq[key] = f + 1
            return True
        past = self.history.pop(key, None)
        if not self.fits(size):
            if past is not None:
                self._remember(key, past)
            return False
        self._insert(key, size)
        self.meta[key] = [now, -1, 1, ctx] if past is None else [now, now - past[0], past[2] + 1, ctx]
        self.fill.pending += size
        return False

    def _follow_leader(self) -> None:
        """The model takes over only when a model shadow beats S3-FIFO's by ``duel_margin`` (switching has a cost)."""
        missed = self.shadow_missed
        best = min(range(1, len(missed)), key=missed.__getitem__)
        self.leader = best if missed[best] < self.duel_margin * missed[0] else 0
        if self.leader:
            self.threshold = self.thresholds[best - 1]

    def _moves_to_main(self, key, size) -> bool:
        return self._keep(key, self.meta[key], size, rule=super()._moves_to_main(key, size))

    def _keep(self, key, m: list, size: int, rule: bool) -> bool:
        """Move to main? Records a labelled sample; answers with S3-FIFO's ``rule`` unless the model decides."""
        if self.owner is not None:  # a shadow asks the live cache's model, and always follows it once trained
            if not (self.owner.trained and self.owner.enabled):
                return rule
            if rule:
                return True
            if self.rescued_bytes + size > self.rescue_cap * self.capacity_bytes:
                return False
            try:
                keep = self.table.p(self.table.cell(KEEP, self.clock - m[0], m[1], m[2], size, m[3])) >= self.threshold
                if keep:
                    self.rescued[key] = size
                    self.rescued_bytes += size
                return keep
            except Exception:  # the live cache's model failed: S3-FIFO from here on, there too
                self.owner.enabled = False
                return rule
        if not self.enabled or self.fill.rate <= 0:
            return rule
        now = self.clock
        started = time.process_time()
        try:
            cell = self.table.cell(KEEP, now - m[0], m[1], m[2], size, m[3])
            self.labeler.add(key, now, self.fill.horizon(self.capacity_bytes, self.horizon_factor), cell)
            if not self.trained:
                return rule
            if not self.model_leads or rule:
                return rule  # the model only rescues objects S3-FIFO would drop; it never drops a hit object
            if self.rescued_bytes + size > self.rescue_cap * self.capacity_bytes:
                return False
            if self.table.p(cell) >= self.threshold:
                self.rescued[key] = size
                self.rescued_bytes += size
                return True
            return False
        except Exception:  # a failing model must not break the cache: S3-FIFO from here on
            self.enabled = False
            return rule
        finally:
            self._decide_seconds += time.process_time() - started
            self._decisions += 1

    def _context(self, key) -> int:
        """0: not a continuation of the previous request; 1: continues a new run; 2: continues a re-read run.

        Block traces read runs of neighbouring integer keys; whether the run's previous object had been read before
        tells a re-read run from a first read. Other keys are always context 0.
        """
        prev, self._prev = self._prev, key
        if prev is None or type(key) is not int or type(prev) is not int or not 0 < key - prev <= 256:
            return 0
        pm = self.meta.get(prev)
        return 2 if pm is not None and pm[2] > 1 else 1

    def _drop(self, key, size) -> None:
        super()._drop(key, size)
        if key in self.rescued:
            self.rescued_bytes -= self.rescued.pop(key)
        m = self.meta.pop(key)
        self._remember(key, (m[0], m[1], m[2]))

    def _remember(self, key, past) -> None:
        self.history[key] = past
        if len(self.history) > self.history_max:
            self.history.popitem(last=False)

    def _learn(self) -> None:
        for cell, _, positive in self._labels:
            self.table.update(cell, positive)
        self._labels.clear()

    def _housekeeping(self, now: int) -> None:
        self.fill.close_window(256)
        self.labeler.expire(now, self._labels)
        self._learn()
        if self.shadows is not None and not now & 0x3FFF:  # the duel follows recent behaviour
            self.shadow_missed = [v * 0.7 + 1 for v in self.shadow_missed]
        if self._decisions >= 4096:
            if 1e6 * self._decide_seconds / self._decisions > self.slow_us:
                self.enabled = False
            self._decide_seconds, self._decisions = 0.0, 0


def _group(key) -> int:
    """A stable pseudo-random group in 0..31, the same in every process (spatial sampling for the shadows)."""
    h = key * 2654435761 if type(key) is int else zlib.crc32(repr(key).encode())
    return (h >> 11) & 31
