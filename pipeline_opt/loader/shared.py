"""Windows that cross from a worker process to the loader without a second copy and with no handle per window.

Invariants: a worker gathers a window's tensor columns straight into one shared-memory block (so the gather is the
only copy a row makes in the worker): a slot of the loader's ``SegmentPool`` when one is free, else a fresh segment.
The window is sent as the slot number (or the fresh segment, whose handle torch passes) plus a small layout tuple
(column, dtype, byte offset, rows). ``unpack`` turns a packed item back into column → tensor views of the block, and
``cut`` slices those views into batches: no copy on either side. Lists (strings) travel as plain Python values. A
batch keeps its window's block referenced, as in-process batches keep their window's arrays, which is what tells
the pool when a slot may be written again.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Optional

import numpy as np

from pipeline_opt.loader.blocks import column_layout

BLOCK_KEY = "__block__"  # a fresh segment (no slot of the pool was free)
SLOT_KEY = "__slot__"  # the pool's slot the window is in
LAYOUT_KEY = "__layout__"


class SharedWindow:
    """One window's tensor columns in one shared-memory block; ``out(name)`` is the array column ``name`` fills.
    The block is a slot of ``pool`` (taken for ``worker``) when one is free, else a fresh segment; ``written()``
    is called once the gather is done."""

    def __init__(self, dtypes: dict, rows: int, pool=None, worker: int = 0):
        self.rows, self.pool = rows, pool
        self._offsets, total = column_layout(dtypes, rows)
        self.slot: Optional[int] = pool.take(worker, total) if pool is not None else None
        self.block = None  # the fresh segment (a torch tensor) when no slot was free
        if self.slot is None:
            import torch

            self.block = torch.empty(0, dtype=torch.uint8).set_(new_shared(max(total, 1)))
            buf = self.block.numpy()
        else:
            buf = pool.array(self.slot)
        self._arrays = {name: buf[off:off + rows * d.itemsize].view(d) for name, (d, off) in self._offsets.items()}

    def out(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def written(self) -> None:
        if self.slot is not None:
            self.pool.written(self.slot)

    def pack(self, names: list, lo: int, hi: int, extra: dict) -> dict:
        """Packed rows ``[lo, hi)`` of columns ``names``: the slot or the block, where each tensor column's rows
        sit in it (``None`` for a column of ``extra``, which travels as it is)."""
        layout = []
        for name in names:
            d, off = self._offsets.get(name, (None, 0))
            layout.append((name, None, 0, 0) if d is None else (name, d.str, off + lo * d.itemsize, hi - lo))
        block = {BLOCK_KEY: self.block} if self.slot is None else {SLOT_KEY: self.slot}
        return {**block, LAYOUT_KEY: tuple(layout), **extra}


def unpack(batch: dict, pool=None) -> dict:
    """Column → tensor views of a packed batch, columns in table order (a batch not packed is returned as it is).
    A window in a slot of ``pool`` becomes views of the slot's array (``torch.from_numpy``, so that every batch
    counts against the array); a fresh segment becomes views of its tensor."""
    import torch

    slot = batch.pop(SLOT_KEY, None)
    block = batch.pop(BLOCK_KEY, None)
    if block is None and slot is None:
        return batch
    buf = pool.received(slot) if slot is not None else None
    out = {}
    for name, dtype, off, n in batch.pop(LAYOUT_KEY):
        if dtype is None:
            out[name] = batch.pop(name)
            continue
        d = np.dtype(dtype)
        if buf is not None:
            out[name] = torch.from_numpy(buf[off:off + n * d.itemsize].view(d))
        else:
            out[name] = block[off:off + n * d.itemsize].view(torch_dtype(dtype))
    out.update(batch)
    return out


def cut(columns: dict, rows: int, batch_size: int):
    """Batches of ``batch_size`` rows (the last one shorter) of column → tensor (or list) ``columns``."""
    for lo in range(0, rows, batch_size):
        yield {name: values[lo:lo + batch_size] for name, values in columns.items()}


@lru_cache(maxsize=None)
def torch_dtype(dtype: str):
    import torch

    return torch.from_numpy(np.empty(0, dtype=np.dtype(dtype))).dtype


def new_shared(nbytes: int):
    """Storage allocated in shared memory from the start (``share_memory_`` would allocate, then copy)."""
    import torch

    try:
        return torch.UntypedStorage._new_shared(nbytes)
    except (AttributeError, TypeError, RuntimeError):  # a torch without the private constructor
        return torch.empty(nbytes, dtype=torch.uint8).share_memory_().untyped_storage()
