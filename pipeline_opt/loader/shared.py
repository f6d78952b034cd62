"""Windows that cross from a worker process to the loader without a second copy and with one handle per window.

Invariants: a worker gathers a window's tensor columns straight into one shared-memory block (so the gather is the
only copy a row makes in the worker). The window is sent as that block plus a small layout tuple (column, dtype,
byte offset, rows), so torch passes one shared-memory handle per window instead of one per batch or one fresh copy
per column. ``unpack`` turns a packed item back into column → tensor views of the block, and ``cut`` slices those
views into batches: no copy on either side. Lists (strings) travel as plain Python values. A batch keeps its
window's block alive, as in-process batches keep their window's arrays.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from pipeline_opt.loader.blocks import column_layout

BLOCK_KEY = "__block__"
LAYOUT_KEY = "__layout__"


class SharedWindow:
    """One window's tensor columns in one shared-memory block; ``out(name)`` is the array column ``name`` fills."""

    def __init__(self, dtypes: dict, rows: int):
        import torch

        self.rows = rows
        self._offsets, total = column_layout(dtypes, rows)
        self.block = torch.empty(0, dtype=torch.uint8).set_(_new_shared(max(total, 1)))
        buf = self.block.numpy()
        self._arrays = {name: buf[off:off + rows * d.itemsize].view(d) for name, (d, off) in self._offsets.items()}

    def out(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def pack(self, names: list, lo: int, hi: int, extra: dict) -> dict:
        """Packed rows ``[lo, hi)`` of columns ``names``: the block, where each tensor column's rows sit in it
        (``None`` for a column of ``extra``, which travels as it is)."""
        layout = []
        for name in names:
            d, off = self._offsets.get(name, (None, 0))
            layout.append((name, None, 0, 0) if d is None else (name, d.str, off + lo * d.itemsize, hi - lo))
        return {BLOCK_KEY: self.block, LAYOUT_KEY: tuple(layout), **extra}


def unpack(batch: dict) -> dict:
    """Column → tensor views of a packed batch, columns in table order (a batch not packed is returned as it is)."""
    block = batch.pop(BLOCK_KEY, None)
    if block is None:
        return batch
    out = {}
    for name, dtype, off, n in batch.pop(LAYOUT_KEY):
        if dtype is None:
            out[name] = batch.pop(name)
            continue
        d = np.dtype(dtype)
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


def _new_shared(nbytes: int):
    """Storage allocated in shared memory from the start (``share_memory_`` would allocate, then copy)."""
    import torch

    try:
        return torch.UntypedStorage._new_shared(nbytes)
    except (AttributeError, TypeError, RuntimeError):  # a torch without the private constructor
        return torch.empty(nbytes, dtype=torch.uint8).share_memory_().untyped_storage()
