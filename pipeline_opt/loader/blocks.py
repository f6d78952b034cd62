"""One memory block per window for its tensor columns, laid out once, reused once nothing refers to it.

Invariants: a window's tensor columns are views of one block (each column on a cache-line boundary), and every
batch tensor of the window is a view of a column, so a live batch keeps its block referenced. ``BlockPool`` hands
out a block again only when its reference count shows that the pool alone holds it (CPython counts every view,
torch tensor and ``.numpy()`` of a batch against the block), so no batch a caller still holds is ever overwritten.
Why: gathering into fresh memory faults in every page of every window (about 75 MB an epoch on the peers'
benchmark), which costs more CPU than the gather itself; a reused block is already mapped.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

ALIGN = 64  # every column starts on a cache-line boundary, so any dtype view of the block is aligned
_IDLE_REFS = 2  # ``sys.getrefcount(arrays[i])``: the list's slot and the call's own argument


def unreferenced(arrays: list, i: int) -> bool:
    """Whether ``arrays[i]`` is referenced by nothing but the list (no batch, view or tensor of it is alive)."""
    return sys.getrefcount(arrays[i]) == _IDLE_REFS


def column_layout(dtypes: dict, rows: int) -> tuple:
    """({column: (dtype, byte offset)}, total bytes) of ``rows`` rows of each column in one block."""
    offsets, total = {}, 0
    for name, dtype in dtypes.items():
        d = np.dtype(dtype)
        offsets[name] = (d, total)
        total += -(-rows * d.itemsize // ALIGN) * ALIGN
    return offsets, total


class BlockPool:
    """Blocks of bytes for windows; ``take(n)`` returns an idle block of at least ``n`` bytes or a new one.

    At most ``keep`` blocks are remembered (a caller holding many windows' batches gets fresh blocks beyond that,
    freed as usual when dropped).
    """

    def __init__(self, keep: int = 6):
        self.keep = keep
        self._blocks: list = []
        self._lock = threading.Lock()

    def __reduce__(self):  # another process gets an empty pool of its own, not copies of this one's blocks
        return BlockPool, (self.keep,)

    def take(self, nbytes: int) -> np.ndarray:
        with self._lock:
            for i in range(len(self._blocks)):
                if self._blocks[i].nbytes >= nbytes and unreferenced(self._blocks, i):
                    return self._blocks[i][:nbytes]
            block = np.empty(max(nbytes, 1), dtype=np.uint8)
            idle = [i for i in range(len(self._blocks)) if unreferenced(self._blocks, i)]
            if len(self._blocks) >= self.keep and idle:
                self._blocks.pop(idle[0])  # an idle block too small for today's windows
            if len(self._blocks) < self.keep:
                self._blocks.append(block)
            return block[:nbytes]


class PooledWindow:
    """One window's tensor columns in one block from ``pool``; ``out(name)`` is the array column ``name`` fills."""

    def __init__(self, dtypes: dict, rows: int, pool: BlockPool):
        offsets, total = column_layout(dtypes, rows)
        block = pool.take(total)
        self._arrays = {name: block[off : off + rows * d.itemsize].view(d) for name, (d, off) in offsets.items()}

    def out(self, name: str) -> np.ndarray:
        return self._arrays[name]


class Scratch:
    """One reusable buffer for values that live only while one window is gathered (a column's converted span, the
    window's row order)."""

    def __init__(self):
        self._buf = np.empty(0, dtype=np.uint8)

    def array(self, n: int, dtype) -> np.ndarray:
        d = np.dtype(dtype)
        if self._buf.nbytes < n * d.itemsize:
            self._buf = np.empty(n * d.itemsize, dtype=np.uint8)
        return self._buf[: n * d.itemsize].view(d)
