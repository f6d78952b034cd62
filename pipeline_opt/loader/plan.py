"""The epoch plan: which live rows each rank reads, cut into windows and batches.

Invariants: the epoch's rows form one stream (files in ``file_order``, each file's live rows in file order); rank
``r`` takes stream rows ``[r*R, (r+1)*R)`` where ``R`` is the same for every rank, so every rank yields the same
number of batches. ``drop_last=False`` pads the short tail by wrapping to the stream's start (``padded_rows`` rows
repeat, fewer than ``world_size``); ``drop_last=True`` drops the tail instead (``dropped_rows``) and every batch is
full. Without padding, every live row lands in exactly one rank. A rank's rows are cut into windows of
``window_rows`` rows (a multiple of ``batch_size``), so window ``w`` holds batches
``[w*window_rows/batch_size, ...)`` and a batch never spans two windows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pipeline_opt.loader.shuffle import file_order


@dataclass(frozen=True)
class Window:
    """Rows ``segments`` (file index, live start, live stop) of one rank, shuffled together."""

    index: int
    segments: tuple
    rows: int
    batches: int


@dataclass(frozen=True)
class RankPlan:
    """What one rank reads in one epoch."""

    epoch: int
    rank: int
    world_size: int
    batch_size: int
    windows: tuple
    total_rows: int       # live rows in the snapshot (after the filter)
    rows: int             # rows this rank yields
    batches: int          # batches this rank yields (equal on every rank)
    padded_rows: int      # rows repeated across all ranks to even out the split
    dropped_rows: int     # rows left out across all ranks (drop_last)

    def facts(self) -> dict:
        return {"epoch": self.epoch, "rank": self.rank, "world_size": self.world_size,
                "total_rows": self.total_rows, "rows_per_rank": self.rows, "batches_per_rank": self.batches,
                "padded_rows": self.padded_rows, "dropped_rows": self.dropped_rows,
                "windows": len(self.windows)}


def rows_per_rank(total: int, world_size: int, batch_size: int, drop_last: bool) -> int:
    if drop_last:
        return (total // world_size) // batch_size * batch_size
    return -(-total // world_size) if total else 0


def plan_rank(live_rows: Sequence[int], *, batch_size: int, window_rows: int, rank: int, world_size: int,
              drop_last: bool, shuffle: bool, seed: int, epoch: int) -> RankPlan:
    """The plan of ``rank`` for ``epoch`` over files with ``live_rows`` live rows each."""
    order = [int(i) for i in file_order(len(live_rows), seed, epoch, shuffle) if live_rows[int(i)] > 0]
    counts = np.array([live_rows[i] for i in order], dtype=np.int64)
    total = int(counts.sum())
    per_rank = rows_per_rank(total, world_size, batch_size, drop_last)
    padded = max(per_rank * world_size - total, 0)
    dropped = max(total - per_rank * world_size, 0)
    window_rows = max(window_rows // batch_size, 1) * batch_size
    segments = _span(order, counts, rank * per_rank, per_rank)
    windows = _windows(segments, per_rank, window_rows, batch_size)
    batches = sum(w.batches for w in windows)
    return RankPlan(epoch=epoch, rank=rank, world_size=world_size, batch_size=batch_size, windows=tuple(windows),
                    total_rows=total, rows=per_rank, batches=batches, padded_rows=padded, dropped_rows=dropped)


def _span(order: list, counts: np.ndarray, start: int, length: int) -> list:
    """Stream rows ``[start, start+length)`` as (file, live start, live stop); wraps past the end (padding)."""
    total = int(counts.sum())
    if total == 0 or length == 0:
        return []
    ends = np.cumsum(counts)
    out, pos, left = [], start % total, length
    while left > 0:
        i = int(np.searchsorted(ends, pos, side="right"))
        file_start = int(ends[i] - counts[i])
        take = min(int(ends[i]) - pos, left)
        out.append((order[i], pos - file_start, pos - file_start + take))
        pos, left = (pos + take) % total, left - take
    return out


def _windows(segments: list, rows: int, window_rows: int, batch_size: int) -> list:
    windows, current, filled = [], [], 0
    for f, a, b in segments:
        while a < b:
            take = min(b - a, window_rows - filled)
            current.append((f, a, a + take))
            a, filled = a + take, filled + take
            if filled == window_rows:
                windows.append(current)
                current, filled = [], 0
    if current:
        windows.append(current)
    out = []
    for i, segs in enumerate(windows):
        n = sum(b - a for _, a, b in segs)
        out.append(Window(index=i, segments=tuple(segs), rows=n, batches=-(-n // batch_size)))
    return out
