"""Seeded two-level shuffle and its quality measure.

Invariants: every permutation is a pure function of (seed, epoch[, rank, window]) — the same on every rank, in every
worker and after a resume — so shuffling never depends on the number of workers or on timing. Level 1 permutes
the order of the snapshot's files (identical on all ranks, which is what makes the rank split exact); level 2
permutes the rows inside each window (the bounded in-memory shuffle buffer, ``window_rows`` rows).
"""
from __future__ import annotations

import numpy as np


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in key]))


def file_order(num_files: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """Order in which the snapshot's files form the epoch's row stream."""
    if not shuffle:
        return np.arange(num_files)
    return _rng(seed, epoch, 0x5EED).permutation(num_files)


def window_permutation(rows: int, seed: int, epoch: int, rank: int, window: int, shuffle: bool, out=None):
    """Row order inside one window (None when not shuffling: keep the stream order). ``out``, when given, is an
    int64 array of ``rows`` values to write it into (a reused buffer faults in no fresh pages); the order is the same
    either way (``Generator.permutation(n)`` is ``shuffle`` of ``arange(n)``)."""
    if not shuffle:
        return None
    rng = _rng(seed, epoch, rank, window, 0xB0F)
    if out is None:
        return rng.permutation(rows)
    out[...] = _identity(rows)
    rng.shuffle(out)
    return out


_IDENTITY = [np.zeros(0, dtype=np.int64)]  # the longest arange asked for so far, read-only, shared by all windows


def _identity(rows: int) -> np.ndarray:
    if len(_IDENTITY[0]) < rows:
        identity = np.arange(rows, dtype=np.int64)
        identity.flags.writeable = False
        _IDENTITY[0] = identity
    return _IDENTITY[0][:rows]


def shuffle_quality(positions_in_storage: np.ndarray) -> dict:
    """How well a delivered order hides the stored order.

    ``positions_in_storage[i]`` is the stored (unshuffled) position of the i-th delivered row. Returns
    ``rank_correlation``: Spearman's rho between delivered and stored position (≈0 for a uniform shuffle, 1 for
    none), and ``displacement``: mean |delivered − stored| / n, which is 1/3 for a uniform random permutation
    and 0 for none (so ``displacement / (1/3)`` reads as a fraction of a perfect shuffle).
    """
    stored = np.asarray(positions_in_storage, dtype=np.float64)
    n = len(stored)
    if n < 2:
        return {"rank_correlation": 1.0, "displacement": 0.0, "relative_displacement": 0.0}
    delivered = np.arange(n, dtype=np.float64)
    stored_rank = np.argsort(np.argsort(stored)).astype(np.float64)
    rho = float(np.corrcoef(delivered, stored_rank)[0, 1])
    disp = float(np.mean(np.abs(delivered - stored_rank)) / n)
    return {"rank_correlation": rho, "displacement": disp, "relative_displacement": disp * 3.0}
