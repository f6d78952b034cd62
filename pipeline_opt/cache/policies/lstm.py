"""``lstm``: a recurrent (LSTM) predictor of reuse over each object's request-gap sequence, with sampled eviction.

The sequence for an object is (gap before last, last gap, time idle now) on a log2 scale, plus its frequency and
size; a one-layer LSTM (hidden 16) outputs P(requested again within the horizon). It trains online with Adam on
labelled eviction candidates (``sampled.SampledPolicy``) and scores the sampled candidates in one batched forward
pass. Until trained, or if scoring fails or is too slow, S3-FIFO runs the cache. Needs the ``torch`` extra.
"""
from __future__ import annotations

import numpy as np

from pipeline_opt.cache.policies.sampled import AGE, FREQ, GAP1, GAP2, SIZE, SampledPolicy
from pipeline_opt.errors import require


class LSTMReuse(SampledPolicy):
    name = "lstm"
    table_bytes = 16 * 1024  # ~1.3 k float32 weights plus Adam state
    hidden = 16

    def __init__(self, capacity_bytes: int, seed: int = 0, **kw):
        super().__init__(capacity_bytes, seed=seed, **kw)
        torch = require("torch", "torch")
        torch.manual_seed(seed)
        self.torch = torch
        self.lstm = torch.nn.LSTM(input_size=1, hidden_size=self.hidden, batch_first=True)
        self.head = torch.nn.Linear(self.hidden + 2, 1)
        params = list(self.lstm.parameters()) + list(self.head.parameters())
        self.opt = torch.optim.Adam(params, lr=3e-3)

    def _logits(self, x: np.ndarray):
        t = self.torch.as_tensor(np.ascontiguousarray(x), dtype=self.torch.float32)
        seq = t[:, [GAP2, GAP1, AGE]].unsqueeze(-1) / 16.0
        _, (h, _) = self.lstm(seq)
        static = t[:, [FREQ, SIZE]] / 16.0
        return self.head(self.torch.cat([h[-1], static], dim=1)).squeeze(1)

    def score(self, x: np.ndarray) -> np.ndarray:
        with _one_thread(self.torch), self.torch.no_grad():
            return self.torch.sigmoid(self._logits(x)).numpy()

    def learn(self, x: np.ndarray, positive: np.ndarray, delay: np.ndarray) -> None:
        y = self.torch.as_tensor(positive, dtype=self.torch.float32)
        with _one_thread(self.torch):
            for _ in range(2):
                loss = self.torch.nn.functional.binary_cross_entropy_with_logits(self._logits(x), y)
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()


class _one_thread:
    """Tiny tensors run fastest on one thread; intra-op threads only contend (and the setting is restored)."""

    def __init__(self, torch):
        self.torch = torch

    def __enter__(self):
        self.before = self.torch.get_num_threads()
        if self.before != 1:
            self.torch.set_num_threads(1)

    def __exit__(self, *exc):
        if self.before != 1:
            self.torch.set_num_threads(self.before)
