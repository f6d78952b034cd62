"""An online table estimate of P(requested again within the horizon | decision, idle time, last gap, frequency, size).

Invariants: counts come only from labelled samples (``labels.Labeler``); a cell with few samples backs off to its
decision × idle-time row, which backs off to the decision's overall rate (a Bayesian prior of weight ``prior``);
counts halve every ``decay_every`` labels so the estimate follows a shifting workload. Everything is scalar
arithmetic on small lists: one estimate costs well under a microsecond of Python.
"""
from __future__ import annotations

DECISIONS, IDLE_BINS, GAP_BINS, FREQ_BINS, SIZE_BINS, CONTEXTS = 1, 22, 22, 4, 4, 3
N_CELLS = DECISIONS * IDLE_BINS * GAP_BINS * FREQ_BINS * SIZE_BINS * CONTEXTS
N_ROWS = DECISIONS * IDLE_BINS
BYTES = (N_CELLS + N_ROWS + DECISIONS) * 8  # two float32 counts per cell in a compact encoding


class ReuseTable:
    def __init__(self, prior: float = 8.0, decay_every: int = 50_000):
        self.prior, self.decay_every = prior, decay_every
        self.pos, self.tot = [0.0] * N_CELLS, [0.0] * N_CELLS
        self.row_pos, self.row_tot = [0.0] * N_ROWS, [0.0] * N_ROWS
        self.all_pos, self.all_tot = [0.0] * DECISIONS, [0.0] * DECISIONS
        self.labels = 0

    @staticmethod
    def cell(decision: int, idle: int, gap: int, freq: int, size: int, context: int = 0) -> int:
        """``gap`` < 0 means no earlier gap is known; bins are log2; ``context`` < CONTEXTS (request neighbourhood)."""
        i = min(idle.bit_length(), IDLE_BINS - 1)
        g = min((gap + 1).bit_length(), GAP_BINS - 1)
        f = min(freq, FREQ_BINS) - 1
        s = min(max(size.bit_length() - 10, 0), SIZE_BINS - 1)
        return ((((decision * IDLE_BINS + i) * GAP_BINS + g) * FREQ_BINS + f) * SIZE_BINS + s) * CONTEXTS + context

    def p(self, cell: int) -> float:
        row = cell // (GAP_BINS * FREQ_BINS * SIZE_BINS * CONTEXTS)
        d = row // IDLE_BINS
        base = (self.all_pos[d] + 1.0) / (self.all_tot[d] + 2.0)
        prior = self.prior
        p_row = (self.row_pos[row] + prior * base) / (self.row_tot[row] + prior)
        return (self.pos[cell] + prior * p_row) / (self.tot[cell] + prior)

    def update(self, cell: int, positive: bool) -> None:
        row = cell // (GAP_BINS * FREQ_BINS * SIZE_BINS * CONTEXTS)
        d = row // IDLE_BINS
        self.tot[cell] += 1.0
        self.row_tot[row] += 1.0
        self.all_tot[d] += 1.0
        if positive:
            self.pos[cell] += 1.0
            self.row_pos[row] += 1.0
            self.all_pos[d] += 1.0
        self.labels += 1
        if not self.labels % self.decay_every:
            for table in (self.pos, self.tot, self.row_pos, self.row_tot, self.all_pos, self.all_tot):
                table[:] = [v * 0.5 for v in table]
