"""The epoch and resume point of the next iteration, in shared memory, for workers that outlive an epoch.

Invariants: a persistent worker holds the copy of the dataset it started with, so attributes the loader sets later
(epoch, resume point) never reach it; the loader publishes them here before each iteration starts, while every
worker is idle, and each worker reads them when its iteration starts. The block holds the epoch, a resume flag and
the first batch still to read of each window of the pinned plan (its window count is fixed for a pinned version).
"""

from __future__ import annotations

from typing import Optional

from pipeline_opt.loader.errors import LoaderError


class EpochControl:
    def __init__(self, context, windows: int):
        self.windows = windows
        self._values = context.Array("q", 2 + windows)

    def publish(self, epoch: int, resume: Optional[dict]) -> None:
        if resume and max(resume) >= self.windows:
            raise LoaderError(f"resume point names window {max(resume)}, the plan has {self.windows}")
        with self._values.get_lock():
            self._values[0], self._values[1] = int(epoch), int(resume is not None)
            for w in range(self.windows):
                self._values[2 + w] = (resume or {}).get(w, 0)

    def read(self) -> tuple:
        """(epoch, {window: first batch} or None)."""
        with self._values.get_lock():
            values = self._values[:]
        resume = {w: first for w, first in enumerate(values[2:])} if values[1] else None
        return values[0], resume
