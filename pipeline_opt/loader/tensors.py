"""Arrow columns → NumPy → torch without per-row Python work.

Invariants: numeric columns become one contiguous NumPy array per window (decimals as float64, dates to int32 days,
timestamps to int64 in their stored unit) and batches are zero-copy slices of it; strings stay Arrow and come out as
Python lists (binary columns are refused where columns are chosen: the loader has no decoder for their bytes). A
null in an integer or boolean column is an error unless ``fill_nulls`` gives a value (floats and decimals turn
nulls into NaN). A null-free decimal of precision ≤ 18 becomes float64 in NumPy from its 64-bit unscaled integers
divided by 10**scale: several times faster than Arrow's cast, and the correctly rounded double of each value when
its unscaled integer is below 2**53 (Arrow's cast can be an ulp off).
"""
from __future__ import annotations

import sys
from typing import Mapping, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline_opt.loader.errors import LoaderError


def is_tensor_type(t: pa.DataType) -> bool:
    return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t)
            or pa.types.is_date(t) or pa.types.is_timestamp(t) or pa.types.is_duration(t))


def is_binary_type(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)


def is_list_type(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _numeric(arr: pa.Array) -> pa.Array:
    t = arr.type
    if pa.types.is_decimal(t):
        return pc.cast(arr, pa.float64())
    if pa.types.is_date32(t):
        return arr.cast(pa.int32())
    if pa.types.is_date64(t) or pa.types.is_timestamp(t) or pa.types.is_duration(t):
        return arr.cast(pa.int64())
    if t in (pa.uint16(), pa.uint32(), pa.uint64()):
        return arr.cast(pa.int64())  # torch has no wide unsigned integer tensors
    return arr


def column_array(name: str, arr, fill_nulls: Optional[Mapping[str, object]]):
    """One column as a NumPy array (tensor types) or a pyarrow Array (strings)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if is_list_type(arr.type):
        return arr
    arr = _numeric(arr)
    if arr.null_count:
        fill = (fill_nulls or {}).get(name)
        if fill is not None:
            arr = arr.fill_null(pa.scalar(fill).cast(arr.type))
        elif not pa.types.is_floating(arr.type):
            raise LoaderError(f"column {name!r} has nulls; pass fill_nulls={{{name!r}: value}}")
    return arr.to_numpy(zero_copy_only=False)


def tensor_dtype(t: pa.DataType) -> np.dtype:
    """The NumPy dtype a tensor column of Arrow type ``t`` becomes (what ``column_array`` returns)."""
    if pa.types.is_decimal(t) or pa.types.is_floating(t) and t.bit_width == 64:
        return np.dtype(np.float64)
    if pa.types.is_date32(t):
        return np.dtype(np.int32)
    if pa.types.is_date64(t) or pa.types.is_timestamp(t) or pa.types.is_duration(t) \
            or t in (pa.uint16(), pa.uint32(), pa.uint64()):
        return np.dtype(np.int64)
    return np.dtype(t.to_pandas_dtype())


def window_arrays(table: pa.Table, rows: np.ndarray, fill_nulls, out=None, order=None, scratch=None) -> dict:
    """Column name → array holding ``table``'s rows ``rows[order]`` (``rows`` when ``order`` is None), a fresh,
    writable copy. ``rows`` is increasing (live rows in table order); ``order`` is the window's permutation.

    Only the span ``[rows[0], rows[-1]]`` is converted (a window that starts late in one file and ends early in the
    next converts none of the rows outside it), into one contiguous array per column from which NumPy gathers.
    ``out(name)``, when given, returns the array a tensor column is gathered into (shared memory for worker
    processes, a pooled block in process), so the gather is the only copy in the destination. ``scratch``, when
    given, is a ``blocks.Scratch`` that holds a column's span between conversion and gather when the span is not
    one Arrow buffer already (a decimal's float64 values; a window that spans files has one chunk per file).
    """
    rows = np.asarray(rows, dtype=np.int64)
    lo, hi = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)
    index = None if hi - lo == len(rows) else rows - lo  # a contiguous span needs no index of its own
    if order is not None:
        index = order if index is None else index[order]
    arrays = {}
    for name in table.column_names:
        column = table.column(name).slice(lo, hi - lo)
        dest = out(name) if out is not None and not is_list_type(column.type) else None
        if is_list_type(column.type):
            arrays[name] = _combined(column if index is None else column.take(pa.array(index)))
            continue
        if column.null_count:  # nulls of dropped rows (deleted, filtered) must not raise
            taken = column if index is None else column.take(pa.array(index))
            arrays[name] = _gather(column_array(name, taken, fill_nulls), None, dest)
            continue
        arrays[name] = _gather(_span(name, column, fill_nulls, scratch), index, dest)
    return arrays


def _span(name: str, column, fill_nulls, scratch) -> np.ndarray:
    """A null-free tensor column's values as one contiguous array: a zero-copy view of a single chunk, else the
    chunks converted into ``scratch`` (combining the chunks in Arrow would fault in fresh memory for every window)."""
    span = _decimal_as_float(column, scratch)
    if span is not None:
        return span
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if scratch is None or len(chunks) <= 1:
        return column_array(name, column, fill_nulls)
    parts = [column_array(name, chunk, fill_nulls) for chunk in chunks]
    return np.concatenate(parts, out=scratch.array(len(column), parts[0].dtype))


def _combined(column) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def _gather(values: np.ndarray, index, dest) -> np.ndarray:
    """``values[index]`` written into ``dest`` (or a fresh array); a copy of ``values`` when ``index`` is None."""
    if dest is None:
        dest = np.empty(len(values) if index is None else len(index), dtype=values.dtype)
    if index is None:
        dest[...] = values
    else:  # "wrap" skips NumPy's per-element bounds handling: the indexes are in range by construction
        values.take(index, out=dest, mode="wrap")
    return dest


def _decimal_as_float(column, scratch=None):
    """float64 values of a null-free decimal128 of precision ≤ 18 (its unscaled integers fit in the low 64 bits of
    each value by the type's contract): each chunk's low words divided by 10**scale into one contiguous array, in one
    pass that converts them to float64 first (NumPy's gather is several times slower from the strided low words).
    None when the fast path does not apply."""
    t = column.type
    if not (pa.types.is_decimal128(t) and t.precision <= 18 and 0 <= t.scale <= 18 and sys.byteorder == "little"):
        return None
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    values = np.empty(len(column), np.float64) if scratch is None else scratch.array(len(column), np.float64)
    pos = 0
    for chunk in chunks:
        n = len(chunk)
        if n:
            words = np.frombuffer(chunk.buffers()[1], dtype=np.int64, count=2 * (chunk.offset + n))
            np.divide(words[2 * chunk.offset::2], 10.0 ** t.scale, out=values[pos:pos + n])
        pos += n
    return values


def batch_tensors(arrays: dict, lo: int, hi: int) -> dict:
    """Rows ``[lo, hi)`` of a window as column name → tensor (or list for strings)."""
    import torch

    out = {}
    for name, arr in arrays.items():
        if isinstance(arr, pa.Array):
            out[name] = arr.slice(lo, hi - lo).to_pylist()
        else:
            out[name] = torch.from_numpy(arr[lo:hi])
    return out
