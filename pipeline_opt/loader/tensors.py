"""Arrow columns → NumPy → torch without per-row Python work.

Invariants: numeric columns become one contiguous NumPy array per window (decimals cast to float64 in Arrow, dates
to int32 days, timestamps to int64 in their stored unit) and batches are zero-copy slices of it; strings and binary
stay Arrow and come out as Python lists. A null in an integer or boolean column is an error unless ``fill_nulls``
gives a value (floats and decimals turn nulls into NaN).
"""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline_opt.loader.errors import LoaderError


def is_tensor_type(t: pa.DataType) -> bool:
    return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t)
            or pa.types.is_date(t) or pa.types.is_timestamp(t) or pa.types.is_duration(t))


def is_list_type(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) \
        or pa.types.is_large_binary(t)


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
    """One column as a NumPy array (tensor types) or a pyarrow Array (strings, binary)."""
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


def window_arrays(table: pa.Table, rows: np.ndarray, fill_nulls) -> dict:
    """Column name → array holding ``table``'s rows ``rows`` in that order (a fresh, writable copy)."""
    out = {}
    for name in table.column_names:
        column = table.column(name)
        if column.null_count:  # nulls of dropped rows (deleted, filtered) must not raise
            column = column.take(pa.array(rows))
            arr = column_array(name, column, fill_nulls)
            out[name] = arr if isinstance(arr, pa.Array) or arr.flags.writeable else arr.copy()
            continue
        arr = column_array(name, column, fill_nulls)
        out[name] = arr.take(pa.array(rows)) if isinstance(arr, pa.Array) else arr.take(rows)  # ndarray.take: 2x []
    return out


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
