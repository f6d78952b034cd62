"""``rl``: reinforcement-learned eviction — a tabular state value learned by temporal differences, sampled eviction.

State of a cached object: log2-binned (idle time, last gap, frequency). Its value is the discounted reward of its
next request (reward 1, discount ``gamma`` per request, so a request d steps later is worth gamma^d). Each labelled
sample is one transition: requested after d steps → target gamma^d; not requested within the horizon H → target
gamma^H · V(state H steps older) (bootstrapped, TD(0)). Eviction takes the sampled candidate of lowest value.
S3-FIFO runs the cache until enough transitions have been seen.
"""
from __future__ import annotations

import numpy as np

from pipeline_opt.cache.policies.sampled import AGE, FREQ, GAP1, SampledPolicy

AGE_BINS, GAP_BINS, FREQ_BINS = 40, 41, 4


class TDValue(SampledPolicy):
    name = "rl"
    table_bytes = AGE_BINS * GAP_BINS * FREQ_BINS * 8
    alpha = 0.05

    def __init__(self, capacity_bytes: int, **kw):
        super().__init__(capacity_bytes, **kw)
        self.value = np.full((AGE_BINS, GAP_BINS, FREQ_BINS), 0.5)

    @staticmethod
    def _state(x: np.ndarray, extra_age: float = 0.0):
        age = np.log2(np.exp2(x[:, AGE]) + extra_age) if extra_age else x[:, AGE]
        a = np.minimum(age, AGE_BINS - 1).astype(np.int64)
        g = np.minimum(x[:, GAP1] + 1, GAP_BINS - 1).astype(np.int64)
        f = np.minimum(x[:, FREQ] * 2, FREQ_BINS - 1).astype(np.int64)
        return a, g, f

    def score(self, x: np.ndarray) -> np.ndarray:
        return self.value[self._state(x)]

    def learn(self, x: np.ndarray, positive: np.ndarray, delay: np.ndarray) -> None:
        horizon = max(self.horizon, 1.0)
        gamma = 0.5 ** (1.0 / horizon)  # a request one horizon away is worth half of one now
        target = np.where(delay >= 0, gamma ** np.maximum(delay, 0), 0.0)
        missed = delay < 0
        if missed.any():
            later = self.value[self._state(x[missed], extra_age=horizon)]
            target[missed] = gamma ** horizon * later
        s = self._state(x)
        np.add.at(self.value, s, self.alpha * (target - self.value[s]))
