"""Shared-memory segments that carry windows from the workers to the loader, reused window after window.

Invariants: the loader allocates ``slots`` segments per worker before its workers start (forked workers inherit the
mappings, spawned ones receive them once with the dataset), so a window crosses as a slot number plus its layout,
never as a new handle. A slot is free (its worker may take it) or taken (from the moment its worker takes it until
the loader hands it back); only the worker that owns a slot takes it and only the loader frees it. The loader hands a
slot back only when the reference count of its array shows that no batch refers to it any more (as ``BlockPool``
decides for in-process blocks: every batch tensor is a view of the slot's array), so a batch the caller still holds
is never overwritten. A worker that finds none of its slots free (the caller holds the batches of many windows)
gathers into a fresh segment, as without a pool.
Why: a fresh segment per window faulted in every page of it in the worker (about 40 % of a worker's CPU time went to
the kernel on the peers' benchmark) and cost the loader a socket round trip to receive each window's handle.
"""
from __future__ import annotations

import threading
from typing import Optional

import numpy as np

from pipeline_opt.loader.blocks import unreferenced
from pipeline_opt.loader.shared import new_shared

FREE, TAKEN = 0, 1


class SegmentPool:
    """``slots`` segments of ``nbytes`` bytes for each of ``workers`` workers; worker ``w`` owns slots
    ``[w * slots, (w + 1) * slots)``."""

    def __init__(self, context, workers: int, slots: int, nbytes: int, _shared=None):
        import torch

        self.workers, self.slots, self.nbytes = workers, slots, nbytes
        if _shared is None:  # built by the loader; a spawned worker gets the same flags and segments
            flags = context.RawArray("b", workers * slots)
            _shared = (flags, [torch.empty(0, dtype=torch.uint8).set_(new_shared(nbytes))
                               for _ in range(workers * slots)])
        self._flags, self._segments = _shared
        self._arrays = [s.numpy() for s in self._segments]  # what batches are views of, and what counts them
        self._held: set = set()  # the loader's side: slots received and not handed back yet
        self._writing: set = set()  # a worker's side: slots its threads are gathering into right now
        self._lock = threading.Lock()

    def __reduce__(self):  # spawn: the flags and segments travel once, with the dataset
        return SegmentPool, (None, self.workers, self.slots, self.nbytes, (self._flags, self._segments))

    # -- a worker's side -----------------------------------------------------------------------------------------
    def take(self, worker: int, nbytes: int) -> Optional[int]:
        """A free slot of ``worker`` for a window of ``nbytes`` bytes, now taken; None when there is none."""
        if nbytes > self.nbytes:
            return None
        with self._lock:
            for slot in range(worker * self.slots, (worker + 1) * self.slots):
                if self._flags[slot] == FREE and slot not in self._writing:
                    self._flags[slot] = TAKEN
                    self._writing.add(slot)
                    return slot
        return None

    def written(self, slot: int) -> None:
        """The window in ``slot`` is complete (or abandoned): no thread of this process writes there any more."""
        with self._lock:
            self._writing.discard(slot)

    def array(self, slot: int) -> np.ndarray:
        return self._arrays[slot]

    # -- the loader's side ---------------------------------------------------------------------------------------
    def received(self, slot: int) -> np.ndarray:
        """The array of ``slot``, whose window has just arrived; it stays taken until ``hand_back`` frees it."""
        self._held.add(slot)
        return self._arrays[slot]

    def hand_back(self) -> None:
        """Frees every received slot that no batch refers to any more."""
        for slot in [s for s in self._held if unreferenced(self._arrays, s)]:
            self._held.discard(slot)
            self._flags[slot] = FREE

    def reclaim(self) -> None:
        """Before persistent workers start another iteration: frees the slots of windows that were taken but never
        received (an iteration left early; torch drops the windows it had in flight). A worker thread of that
        iteration still gathering into one keeps it out of its process's reach until done (``written``)."""
        self.hand_back()
        for slot in range(self.workers * self.slots):
            if slot not in self._held:
                self._flags[slot] = FREE
