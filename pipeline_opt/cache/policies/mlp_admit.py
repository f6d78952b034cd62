"""``mlp_admit``: LRU behind a learned admission filter — a small MLP predicting reuse within LRU's horizon.

On a miss, the object's features (log2 idle time since its previous request, the gap before that, frequency, size;
remembered for a bounded history of keys) go through a 4→16→1 MLP trained online (SGD, logistic loss) on labels
from earlier misses: was the object requested again within the time LRU takes to turn over its bytes? The object
is admitted when the predicted probability is at least ``threshold``, and always while the model is untrained.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from pipeline_opt.cache.policies.labels import FillRate, Labeler
from pipeline_opt.cache.policies.lru import LRU


class MLPAdmission(LRU):
    name = "mlp_admit"
    entry_overhead = 48  # LRU's entry + last request time, gap, frequency
    history_overhead = 24
    min_labels = 2000

    def __init__(self, capacity_bytes: int, threshold: float = 0.5, seed: int = 0, hidden: int = 16, **kw):
        c = int(capacity_bytes)
        self.history_max = min(1 << 20, max(64, int(c * 0.02 / self.history_overhead)))
        max_pending = min(1 << 15, max(64, int(c * 0.005 / 64)))
        reserve = self.history_max * self.history_overhead + max_pending * 64 + (4 * hidden + 2 * hidden + 1) * 8
        self.model_bytes = reserve if reserve <= 0.1 * c else 0
        super().__init__(capacity_bytes, **kw)
        rng = np.random.default_rng(seed)
        self.w1, self.b1 = rng.normal(0, 0.5, (4, hidden)), np.zeros(hidden)
        self.w2, self.b2 = rng.normal(0, 0.5, hidden), 0.0
        self.threshold = threshold
        self.labeler = Labeler(max_pending)
        self.meta: dict = {}
        self.history: OrderedDict = OrderedDict()
        self.clock = 0
        self.fill = FillRate()
        self._labels: list = []

    def request(self, key, size) -> bool:
        now = self.clock
        self.clock = now + 1
        if key in self.labeler.pending:
            self.labeler.on_request(key, now, self._labels)
        if not now & 255:
            self._housekeeping(now)
        m = self.meta.get(key) or self.history.pop(key, None)
        x = (np.array([now - m[0], max(m[1], 0), m[2], size], float) if m else np.array([0.0, 0.0, 0, size], float))
        self.meta.pop(key, None)
        self._remember(key, (now, -1 if m is None else now - m[0], 1 if m is None else m[2] + 1))
        if key in self.resident:
            self.resident.move_to_end(key)
            return True
        if self.model_bytes and self.fill.rate > 0:
            self.labeler.add(key, now, self.fill.horizon(self.capacity_bytes), x)
        if self.model_bytes and self.labeler.labelled >= self.min_labels and self._p(x[None, :])[0] < self.threshold:
            return False
        hit = super().request(key, size)
        if key in self.resident:
            self.fill.pending += size
        return hit

    def _remember(self, key, meta) -> None:
        self.history[key] = meta
        if len(self.history) > self.history_max:
            self.history.popitem(last=False)

    def _hidden(self, x: np.ndarray):
        z = np.log2(x + 1.0) / 16.0
        return np.maximum(z @ self.w1 + self.b1, 0.0), z

    def _p(self, x: np.ndarray) -> np.ndarray:
        h, _ = self._hidden(x)
        return 1.0 / (1.0 + np.exp(-(h @ self.w2 + self.b2)))

    def _housekeeping(self, now: int) -> None:
        self.fill.close_window(256)
        self.labeler.expire(now, self._labels)
        if len(self._labels) >= 256:
            x = np.stack([p for p, _, _ in self._labels])
            y = np.array([pos for _, _, pos in self._labels], float)
            self._labels = []
            self._sgd(x, y)

    def _sgd(self, x: np.ndarray, y: np.ndarray, lr: float = 0.5) -> None:
        h, z = self._hidden(x)
        p = 1.0 / (1.0 + np.exp(-(h @ self.w2 + self.b2)))
        g = (p - y) / len(y)
        gh = np.outer(g, self.w2) * (h > 0)
        self.w2 -= lr * h.T @ g
        self.b2 -= lr * g.sum()
        self.w1 -= lr * z.T @ gh
        self.b1 -= lr * gh.sum(0)
