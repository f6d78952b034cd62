"""``lrb``: LRB-style sampled eviction (Song et al., NSDI'20) with an online table model; S3-FIFO until trained.

Model: the probability that an object is requested again within the cache's horizon (the time new admissions
take to fill the cache), estimated online from labelled samples of eviction candidates, in a table indexed by log-binned
age (time since the last request), last gap between requests, frequency and size. Cells with few samples back off
to a coarser age × frequency table, which backs off to the overall rate. Counts decay by half every ``decay_every``
labels, so the model follows shifting workloads. Eviction takes ``sample_size`` random cached objects and evicts
the one with the lowest keep-value (probability for the byte miss ratio; probability per byte with
``objective="object"``). The probability table is recomputed after each learning batch, so scoring an eviction is
a handful of vectorised integer operations and one table lookup.
"""
from __future__ import annotations

import numpy as np

from pipeline_opt.cache.policies.sampled import SampledPolicy

AGE_BINS, GAP_BINS, FREQ_BINS, SIZE_BINS = 40, 40, 4, 6
N_FINE = AGE_BINS * GAP_BINS * FREQ_BINS * SIZE_BINS


class LRBTable(SampledPolicy):
    name = "lrb"
    prior = 8.0
    decay_every = 50_000
    table_bytes = N_FINE * 24 + AGE_BINS * FREQ_BINS * 16

    def __init__(self, capacity_bytes: int, **kw):
        super().__init__(capacity_bytes, **kw)
        self.fine_pos, self.fine_tot = np.zeros(N_FINE), np.zeros(N_FINE)
        self.coarse_pos, self.coarse_tot = np.zeros(AGE_BINS * FREQ_BINS), np.zeros(AGE_BINS * FREQ_BINS)
        self.keep_table = np.full(N_FINE, 0.5)
        self.since_decay = 0

    def features(self, idx: np.ndarray, age: np.ndarray) -> np.ndarray:
        """Fine cell index of each candidate (coarse cell = fine // (GAP_BINS·…) is recovered in ``learn``)."""
        age_bin = np.minimum(np.frexp(age + 1)[1], AGE_BINS - 1)
        gap_bin = np.minimum(np.frexp(self.gap1[idx] + 2)[1], GAP_BINS - 1)  # no earlier request → bin 1
        freq_bin = np.minimum(self.freq[idx], FREQ_BINS) - 1
        size_bin = np.clip(np.frexp(self.size[idx])[1] - 10, 0, SIZE_BINS - 1)  # ≤512 B … ≥16 KiB
        return ((age_bin * GAP_BINS + gap_bin) * FREQ_BINS + freq_bin) * SIZE_BINS + size_bin

    def score(self, cells: np.ndarray) -> np.ndarray:
        return self.keep_table[cells]

    def learn(self, cells: np.ndarray, positive: np.ndarray, delay: np.ndarray) -> None:
        pos = positive.astype(np.float64)
        coarse = self._coarse(cells)
        np.add.at(self.fine_pos, cells, pos)
        np.add.at(self.fine_tot, cells, 1.0)
        np.add.at(self.coarse_pos, coarse, pos)
        np.add.at(self.coarse_tot, coarse, 1.0)
        self.since_decay += len(cells)
        if self.since_decay >= self.decay_every:
            self.since_decay = 0
            for table in (self.fine_pos, self.fine_tot, self.coarse_pos, self.coarse_tot):
                table *= 0.5
        base = (self.coarse_pos.sum() + 1) / (self.coarse_tot.sum() + 2)
        p_coarse = (self.coarse_pos + self.prior * base) / (self.coarse_tot + self.prior)
        p_coarse_of_fine = p_coarse[self._coarse(np.arange(N_FINE))]
        self.keep_table = (self.fine_pos + self.prior * p_coarse_of_fine) / (self.fine_tot + self.prior)

    @staticmethod
    def _coarse(cells: np.ndarray) -> np.ndarray:
        age_bin = cells // (GAP_BINS * FREQ_BINS * SIZE_BINS)
        freq_bin = (cells // SIZE_BINS) % FREQ_BINS
        return age_bin * FREQ_BINS + freq_bin
