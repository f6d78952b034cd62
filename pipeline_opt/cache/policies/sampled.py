"""Sampled eviction driven by a learned reuse score, with S3-FIFO as the fallback (the engine of the learned policies).

Invariants:
- the score model sees only requests already made: samples are labelled by later requests (``labels.Labeler``);
- until the model has ``min_labels`` labels, or if scoring fails or runs slower than ``slow_us`` per eviction, the
  cache is run by an inner S3-FIFO over the same bytes (``mode == "fallback"``);
- ``used_bytes`` = reserved model memory (score tables, the history of evicted keys, pending samples) + cached bytes +
  ``entry_overhead`` per cached object, never above the capacity. Caches too small to hold the reservation run as
  plain S3-FIFO with nothing reserved.

Subclasses override ``score`` (higher = keep); they may also override ``learn`` to fit their model on labels.
"""
from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np

from pipeline_opt.cache.policies.base import CachePolicy
from pipeline_opt.cache.policies.labels import Labeler
from pipeline_opt.cache.policies.s3fifo import S3FIFO

# feature columns of the matrices passed to ``score`` and ``learn`` (log2 scale; -1 = no such earlier request)
AGE, GAP1, GAP2, FREQ, SIZE = range(5)
N_FEATURES = 5


class SampledPolicy(CachePolicy):
    entry_overhead = 64  # key, slot, last time, two gaps, frequency, size
    ghost_overhead = 24  # history entry of an evicted key: last time, gap, frequency
    sample_size = 32
    samples_per_eviction = 2
    min_labels = 2000
    table_bytes = 64 * 1024  # what the model itself occupies
    sample_bytes = 64  # one pending sample: key, times, feature row
    history_fraction = 0.02
    pending_fraction = 0.005
    max_reserve_fraction = 0.1
    learn_every = 256
    horizon_factor = 1.0  # horizon = factor × the time new admissions take to fill the cache

    def __init__(self, capacity_bytes: int, objective: str = "byte", slow_us: float = 1000.0, seed: int = 0,
                 horizon_factor: float | None = None, sample_size: int | None = None,
                 min_labels: int | None = None, **kw):
        capacity_bytes = int(capacity_bytes)
        if horizon_factor is not None:
            self.horizon_factor = horizon_factor
        if sample_size is not None:
            self.sample_size = sample_size
        if min_labels is not None:
            self.min_labels = min_labels
        self.history_max = min(1 << 20, max(64, int(capacity_bytes * self.history_fraction / self.ghost_overhead)))
        max_pending = min(1 << 15, max(64, int(capacity_bytes * self.pending_fraction / self.sample_bytes)))
        reserve = self.table_bytes + self.history_max * self.ghost_overhead + max_pending * self.sample_bytes
        self.enabled = reserve <= self.max_reserve_fraction * capacity_bytes
        self.model_bytes = reserve if self.enabled else 0
        super().__init__(capacity_bytes, **kw)
        self.objective, self.slow_us = objective, slow_us
        self.rng = np.random.default_rng(seed)
        self._rand, self._rand_at = self.rng.random(1 << 16), 0
        self.fallback: S3FIFO | None = self._new_fallback()
        self.mode = "fallback"
        self.keys: list = []
        self.slot: dict = {}
        self.last, self.gap1, self.gap2, self.freq, self.size = (np.zeros(1024, np.int64) for _ in range(5))
        self.history: OrderedDict = OrderedDict()
        self.clock = 0
        self._evicted_any = False
        self.horizon = 0.0
        self.admitted_bytes = 0  # since the last housekeeping
        self.fill_rate = 0.0  # EMA of admitted bytes per request
        self.labeler = Labeler(max_pending)
        self._labels: list = []
        self._score_seconds = 0.0
        self._scored = 0

    # ------------------------------------------------------------------ the request path
    def request(self, key, size) -> bool:
        now = self.clock
        self.clock = now + 1
        if key in self.labeler.pending:
            self.labeler.on_request(key, now, self._labels)
        if not now & 63:
            self._housekeeping(now)
        s = self.slot.get(key)
        if s is not None:
            self.gap2[s] = self.gap1[s]
            self.gap1[s] = now - self.last[s]
            self.last[s] = now
            self.freq[s] += 1
            if self.fallback is not None:
                self.fallback.request(key, size)
            return True
        past = self.history.pop(key, None)
        if self.fallback is not None:
            return self._fallback_miss(key, size, now, past)
        if self.fits(size):
            charge = size + self.entry_overhead
            while self.used_bytes + charge > self.capacity_bytes:
                self._evict_sampled(now)
                if self.fallback is not None:  # the model failed or was too slow mid-way
                    return self._fallback_miss(key, size, now, past)
            self._add(key, size, now, past)
            self.used_bytes += charge
        elif past is not None:
            self._remember(key, past[0], past[1], past[2])
        return False

    def _fallback_miss(self, key, size, now, past) -> bool:
        fb = self.fallback
        assert fb is not None  # callers check self.fallback first
        fb.request(key, size)
        for old in fb.pop_evicted():
            self._record_samples(now, 1 if self.enabled else 0)
            self._drop(old, now)
            self._evicted.append(old)
        if key in fb:
            self._add(key, size, now, past)
        self.used_bytes = self.model_bytes + fb.used_bytes
        if self.enabled and self.labeler.labelled >= self.min_labels and self.mode == "fallback":
            self._leave_fallback()
        return False

    # ------------------------------------------------------------------ model hooks
    def score(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - the override point
        """Keep-value of each candidate row of ``x`` (higher = keep)."""
        raise NotImplementedError

    def learn(self, x: np.ndarray, positive: np.ndarray, delay: np.ndarray) -> None:
        """Fit on labelled samples: ``positive`` = requested again within the horizon; ``delay`` = steps (or -1)."""

    # ------------------------------------------------------------------ eviction
    def _evict_sampled(self, now: int) -> None:
        n = len(self.keys)
        k = min(self.sample_size, n)
        if self._rand_at + k > len(self._rand):
            self._rand, self._rand_at = self.rng.random(1 << 16), 0
        idx = (self._rand[self._rand_at:self._rand_at + k] * n).astype(np.int64)
        self._rand_at += k
        age = now - self.last[idx]
        started = time.process_time()
        try:
            x = self.features(idx, age)
            keep = self.score(x)
            if self.objective == "object":
                keep = keep / self.size[idx]
            victim = int(idx[int(np.argmin(keep - 1e-12 * age))])
        except Exception:  # a failing model must not break the cache: fall back for good
            self.enabled, x = False, None
            victim = int(idx[int(np.argmax(age))])
        self._score_seconds += time.process_time() - started
        self._scored += 1
        if self.horizon > 0 and x is not None:
            for j in range(min(self.samples_per_eviction, k)):
                self.labeler.add(self.keys[int(idx[j])], now, int(self.horizon) + 1, x[j])
        key = self.keys[victim]
        self.used_bytes -= int(self.size[victim]) + self.entry_overhead
        self._drop(key, now)
        self._evicted.append(key)
        if not self.enabled:
            self._enter_fallback()

    def features(self, idx: np.ndarray, age: np.ndarray) -> np.ndarray:
        """Rows of log2 features (columns AGE, GAP1, GAP2, FREQ, SIZE; -1 = no earlier request)."""
        x = np.empty((len(idx), N_FEATURES))
        x[:, AGE] = np.log2(age + 1)
        g1, g2 = self.gap1[idx], self.gap2[idx]
        x[:, GAP1] = np.log2(np.maximum(g1, 0) + 1)
        x[:, GAP1][g1 < 0] = -1
        x[:, GAP2] = np.log2(np.maximum(g2, 0) + 1)
        x[:, GAP2][g2 < 0] = -1
        x[:, FREQ] = np.log2(self.freq[idx])
        x[:, SIZE] = np.log2(self.size[idx])
        return x

    def _record_samples(self, now: int, count: int) -> None:
        n = len(self.keys)
        for _ in range(min(count, n)):
            self._sample_slot(int(self.rng.integers(0, n)), now)

    def _sample_slot(self, s: int, now: int) -> None:
        if self.horizon <= 0 or self.labeler.full():
            return
        idx = np.array([s])
        x = self.features(idx, now - self.last[idx])[0]
        self.labeler.add(self.keys[s], now, int(self.horizon) + 1, x)

    # ------------------------------------------------------------------ slots and history
    def _add(self, key, size, now, past) -> None:
        s = len(self.keys)
        if s == len(self.last):
            for name in ("last", "gap1", "gap2", "freq", "size"):
                arr = getattr(self, name)
                setattr(self, name, np.concatenate([arr, np.zeros_like(arr)]))
        self.keys.append(key)
        self.slot[key] = s
        self.resident[key] = size
        self.last[s], self.size[s] = now, size
        self.admitted_bytes += size
        if past is None:
            self.gap1[s] = self.gap2[s] = -1
            self.freq[s] = 1
        else:
            self.gap1[s], self.gap2[s], self.freq[s] = now - past[0], past[1], past[2] + 1

    def _drop(self, key, now: int) -> None:
        """Removes a cached key (swap with the last slot) and remembers its history."""
        self._evicted_any = True
        s = self.slot.pop(key)
        del self.resident[key]
        self._remember(key, int(self.last[s]), int(self.gap1[s]), int(self.freq[s]))
        tail = len(self.keys) - 1
        if s != tail:
            moved = self.keys[tail]
            self.keys[s] = moved
            self.slot[moved] = s
            for arr in (self.last, self.gap1, self.gap2, self.freq, self.size):
                arr[s] = arr[tail]
        self.keys.pop()

    def _remember(self, key, last: int, gap: int, freq: int) -> None:
        self.history[key] = (last, gap, freq)
        if len(self.history) > self.history_max:
            self.history.popitem(last=False)

    # ------------------------------------------------------------------ learning and mode changes
    def _housekeeping(self, now: int) -> None:
        rate = self.admitted_bytes / 64
        self.admitted_bytes = 0
        self.fill_rate = rate if self.fill_rate <= 0 else 0.99 * self.fill_rate + 0.01 * rate
        if self._evicted_any and self.fill_rate > 0:
            self.horizon = self.horizon_factor * self.capacity_bytes / self.fill_rate
        self.labeler.expire(now, self._labels)
        if len(self._labels) >= self.learn_every:
            labels, self._labels = self._labels, []
            x = np.stack([p for p, _, _ in labels])
            positive = np.array([pos for _, _, pos in labels], dtype=bool)
            delay = np.array([-1 if d is None else d for _, d, _ in labels], dtype=np.int64)
            try:
                self.learn(x, positive, delay)
            except Exception:
                self.enabled = False
                if self.fallback is None:
                    self._enter_fallback()
        if self.fallback is None and self._scored >= 4096:
            if 1e6 * self._score_seconds / self._scored > self.slow_us:
                self.enabled = False
                self._enter_fallback()
            self._score_seconds, self._scored = 0.0, 0

    def _new_fallback(self) -> S3FIFO:
        return S3FIFO(self.capacity_bytes - self.model_bytes, entry_overhead=self.entry_overhead,
                      ghost_overhead=self.ghost_overhead)

    def _leave_fallback(self) -> None:
        self.mode = "model"
        self.fallback = None
        self.used_bytes = self.model_bytes + sum(self.resident.values()) + self.entry_overhead * len(self.resident)

    def _enter_fallback(self) -> None:
        """Hands the cached objects to a fresh S3-FIFO (all in its main queue); model memory stays reserved."""
        fb = self._new_fallback()
        for key, size in self.resident.items():
            fb.main[key] = size
            fb.resident[key] = size
            fb.freq[key] = 0
            fb.used_bytes += size + self.entry_overhead
        self.fallback, self.mode = fb, "fallback"
        self.used_bytes = self.model_bytes + fb.used_bytes
