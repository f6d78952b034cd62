"""Fingerprints of a snapshot's named data files, computed in this process (no Spark scan): by polars where it is
installed, else by Arrow reads and NumPy hashes.

What verifies a commit that this process wrote (the in-process compaction engine): the rows of the files it
removed, read at the version before it, against the rows of the files it added. Same contract as ``verify``'s Spark
fingerprints — row count, per-column null counts, order-free sums of 64-bit row hashes modulo 2⁶¹−1, per-column
checksums when asked — with a hash of its own (polars' struct hash, else NumPy's), so an in-process fingerprint is
compared only with another taken in the same process.

Invariants: read-only; a file's rows are its live rows (the deletion vector applied), under their logical names
(column mapping resolved), with its partition values as columns and a column the file predates as nulls; every
value is cast to the snapshot's logical type before hashing, so two physical encodings of the same rows (Spark's
and delta-rs' Parquet writers) hash alike, while a changed value, a lost or duplicated row or a row moved to another
partition changes the sum. Memory holds the files read ahead and one batch of rows (polars: its streaming engine's
morsels).
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline_opt.delta.deletion_vectors import deleted_rows, keep_mask
from pipeline_opt.delta.fs import resolve
from pipeline_opt.delta.snapshot import DataFile, Snapshot
from pipeline_opt.tables.checks import ColumnFingerprint, TableFingerprint

_MOD = 2**61 - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_NULL = np.uint64(0x5BD1E9955BD1E995)  # the hash of a null value (before the column's own seed)
_SEED = 0x2545F491  # polars' hash seed (any fixed number: both sides of a comparison use the same)


def arrow_fingerprint(snapshot: Snapshot, paths: Sequence[str], *, column_checksums: bool = False
                      ) -> TableFingerprint:
    """The fingerprint of the live rows of ``paths`` (relative, as in the log) in ``snapshot``."""
    fields = [snapshot.schema.field(name) for name in snapshot.columns]
    polars = _polars()
    if polars is not None:
        rows, row_sum, nulls, sums = _polars_sums(polars, snapshot, paths, column_checksums)
    else:
        rows, row_sum, nulls, sums = _numpy_sums(snapshot, paths, fields, column_checksums)
    columns = [ColumnFingerprint(f.name, str(f.type), nulls[i], sums[i] % _MOD if column_checksums else None)
               for i, f in enumerate(fields)]
    return TableFingerprint(snapshot.version, rows, row_sum % _MOD, columns)


def _polars():
    """polars where it is installed (the ``verify`` extra): it reads and hashes in native code on every core,
    several times faster than the Arrow reads and NumPy hashes below, which serve where it is not. One fingerprint
    is compared only with one taken in the same process, so both sides always hash alike."""
    try:
        import polars
    except ImportError:
        return None
    return polars


def polars_installed() -> bool:
    """Whether fingerprints are taken by polars (the fast route) rather than by Arrow reads and NumPy hashes."""
    return _polars() is not None


def _polars_sums(pl, snapshot: Snapshot, paths: Sequence[str], column_checksums: bool):
    """Row count, row-hash sum, per-column null counts and hash sums, by polars. Files without a deletion vector
    on a local disk are scanned by polars itself, one streaming query per partition (the partition values added as
    text, the columns read by physical name against the logical schema, a column a file predates as nulls); the
    others (deletion vectors, object stores, a file polars cannot read against the logical schema, such as an
    int32 column since widened) are read by Arrow and hashed by the same expression, so both routes hash alike."""
    names = list(snapshot.columns)
    logical = pl.from_arrow(snapshot.schema.empty_table()).schema
    # The types hashed: the logical ones, but partition values as their text from the log, on both routes below.
    dtypes = {n: pl.String if n in snapshot.partition_columns else logical[n] for n in names}
    rows, row_sum = 0, 0
    nulls, checksums = [0] * len(names), [0] * len(names)

    prefix = _unused_prefix(names)
    hashes = [pl.struct(names).hash(seed=_SEED).alias(f"{prefix}row")]
    if column_checksums:
        hashes += [pl.col(name).hash(seed=_SEED + i + 1).alias(f"{prefix}{i}") for i, name in enumerate(names)]
    sums = []
    for h in hashes:  # halves: exact totals, no u64 overflow
        key = pl.col(h.meta.output_name())
        sums += [(key & 0xFFFFFFFF).sum(), (key // (1 << 32)).sum()]
    exprs = [pl.len(), *[pl.col(name).null_count() for name in names], *sums]

    def add(frame) -> None:
        nonlocal rows, row_sum
        # The hashes are columns first, each computed once: used twice in one select, polars hashed them twice.
        out = frame.with_columns(hashes).select([e.alias(f"{prefix}out{i}") for i, e in enumerate(exprs)]) \
            .collect(engine="streaming").row(0)
        rows += out[0]
        halves = out[1 + len(names):]
        row_sum += _halves(halves[0], halves[1])
        for i in range(len(names)):
            nulls[i] += out[1 + i]
            if column_checksums:
                checksums[i] += _halves(halves[2 + 2 * i], halves[3 + 2 * i])

    by_path = {f.path: f for f in snapshot.files}
    fs, root = resolve(snapshot.uri)
    groups: dict = {}
    by_arrow: list[str] = []
    for path in paths:
        f = by_path[path]
        if _scanned_by_polars(fs, f):
            groups.setdefault(tuple(sorted(f.partition.items(), key=lambda kv: kv[0])), []).append(path)
        else:
            by_arrow.append(path)
    physical = {name: snapshot.physical.get(name, name) for name in names}
    schema = {physical[n]: dtypes[n] for n in names if n not in snapshot.partition_columns}
    for values, group in groups.items():
        partition = dict(values)
        scan = pl.scan_parquet([f"{root.rstrip('/')}/{p}" for p in group], schema=schema, missing_columns="insert",
                               extra_columns="ignore")
        frame = scan.select([pl.lit(None if partition.get(n) is None else str(partition[n]), dtypes[n]).alias(n)
                             if n in snapshot.partition_columns else pl.col(physical[n]).alias(n) for n in names])
        try:
            add(frame)
        except (pl.exceptions.SchemaError, pl.exceptions.ColumnNotFoundError, pl.exceptions.ComputeError):
            by_arrow.extend(group)
    for table in _tables(snapshot, by_arrow):
        add(pl.from_arrow(table, rechunk=False).lazy().select([pl.col(n).cast(dtypes[n]) for n in names]))
    return rows, row_sum, nulls, checksums


def _unused_prefix(names: Sequence[str]) -> str:
    """A column-name prefix that no column of the table starts with (the hash columns are added beside them)."""
    prefix = "_fingerprint_"
    while any(name.startswith(prefix) for name in names):
        prefix = "_" + prefix
    return prefix


def _scanned_by_polars(fs: pafs.FileSystem, f: DataFile) -> bool:
    """Whether polars scans the file itself: a local file without a deletion vector (polars applies no deletion
    vector, and object-store credentials stay with the Arrow filesystem)."""
    return isinstance(fs, pafs.LocalFileSystem) and f.dv is None


def _halves(low: int, high: int) -> int:
    return (int(high) << 32) + int(low)


def _numpy_sums(snapshot: Snapshot, paths: Sequence[str], fields: list, column_checksums: bool):
    rows, row_sum = 0, 0
    nulls = [0] * len(fields)
    sums = [0] * len(fields)
    for table in _tables(snapshot, paths):
        rows += table.num_rows
        for i, f in enumerate(fields):
            nulls[i] += table.column(f.name).null_count
        row_hash = np.zeros(table.num_rows, dtype=np.uint64)
        for i, f in enumerate(fields):
            h = _column_hash(table.column(f.name), i)
            with np.errstate(over="ignore"):
                row_hash = row_hash * _GOLDEN + h
            if column_checksums:
                sums[i] += _sum(_mix(h))
        row_sum += _sum(_mix(row_hash))
    return rows, row_sum, nulls, sums


def _tables(snapshot: Snapshot, paths: Sequence[str]) -> Iterator[pa.Table]:
    """The live rows of ``paths`` in the snapshot's logical schema, in tables of at least ``_BATCH_ROWS`` rows (the
    hashing costs per table, so many small files are hashed together). Files are read on a few threads (Parquet
    decoding releases the GIL), at most ``2 × threads`` ahead of the hashing."""
    by_path = {f.path: f for f in snapshot.files}
    fs, root = resolve(snapshot.uri)
    root = root.rstrip("/")
    vectors: dict[str, bytes] = {}

    def read_bytes(path: str) -> bytes:
        if path not in vectors:
            with fs.open_input_file(resolve(path)[1] if "://" in path else path) as fh:
                vectors[path] = fh.read()
        return vectors[path]

    def read(path: str) -> pa.Table:
        f = by_path[path]
        with fs.open_input_file(f"{root}/{f.path}") as fh:
            raw = pq.ParquetFile(fh).read(use_threads=False)
        if f.dv is not None:
            raw = raw.filter(pa.array(keep_mask(raw.num_rows, deleted_rows(f.dv, read_bytes, root))))
        return _logical(raw, snapshot, f)

    threads = min(8, os.cpu_count() or 2)
    pending: deque = deque()
    batch: list[pa.Table] = []
    rows = 0
    with ThreadPoolExecutor(threads, thread_name_prefix="pipeline_opt-fingerprint") as pool:
        for path in paths:
            pending.append(pool.submit(read, path))
            while len(pending) > 2 * threads or (pending and path == paths[-1]):
                table = pending.popleft().result()
                batch.append(table)
                rows += table.num_rows
                if rows >= _BATCH_ROWS:
                    yield _concat(batch)
                    batch, rows = [], 0
    if batch:
        yield _concat(batch)


def _concat(tables: list[pa.Table]) -> pa.Table:
    """One table of ``tables``; files whose strings came back in different layouts (one writer's ``string``,
    another's ``string_view``) take the first file's layout."""
    schema = tables[0].schema
    return pa.concat_tables([t if t.schema == schema else t.cast(schema) for t in tables])


_BATCH_ROWS = 1 << 17


def _logical(raw: pa.Table, snapshot: Snapshot, f: DataFile) -> pa.Table:
    columns = []
    for name in snapshot.columns:
        field = snapshot.schema.field(name)
        physical = snapshot.physical.get(name, name)
        if name in snapshot.partition_columns:
            value = f.partition.get(name)
            # Partition values are strings in the log; both sides of a comparison carry the same text.
            columns.append(pa.array([None if value is None else str(value)] * raw.num_rows, pa.string()))
        elif physical in raw.column_names:
            column = raw.column(physical)
            columns.append(column if _same_values(column.type, field.type) else column.cast(field.type))
        else:
            columns.append(pa.nulls(raw.num_rows, field.type))
    return pa.table(columns, names=snapshot.columns)


def _same_values(physical: pa.DataType, logical: pa.DataType) -> bool:
    """Whether ``physical`` holds ``logical``'s values in another layout only (a string as ``string_view`` or
    ``large_string``, as delta-rs and newer Arrow writers read back): both hashers see the same values, so the cast,
    which copies every string, is skipped."""
    return physical == logical or (_text_kind(physical) is not None and _text_kind(physical) == _text_kind(logical))


def _text_kind(t: pa.DataType):
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    return None


def _column_hash(column: pa.ChunkedArray, index: int) -> np.ndarray:
    """One 64-bit hash per value; nulls hash to a constant; the column's index seeds it."""
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    values = _value_hash(array)
    if array.null_count:
        values = np.where(array.is_null().to_numpy(zero_copy_only=False), _NULL, values)
    with np.errstate(over="ignore"):
        return _mix(values ^ np.uint64(index + 1) * _GOLDEN)


def _value_hash(array: pa.Array) -> np.ndarray:
    t = array.type
    if pa.types.is_dictionary(t):
        return _value_hash(array.dictionary)[array.indices.fill_null(0).to_numpy(zero_copy_only=False)]
    if pa.types.is_decimal(t) and t.bit_width == 128:
        lanes = _fixed_lanes(array, 16).reshape(-1, 2)
        with np.errstate(over="ignore"):
            return _mix(lanes[:, 0]) ^ lanes[:, 1] * _GOLDEN
    if pa.types.is_boolean(t):
        return array.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint64)
    if pa.types.is_string_view(t) or pa.types.is_binary_view(t):  # views point into several buffers: one offset list
        return _bytes_hash(array.cast(pa.large_string() if pa.types.is_string_view(t) else pa.large_binary()))
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return _bytes_hash(array)
    if pa.types.is_primitive(t) and t.bit_width in (8, 16, 32, 64):  # numbers, dates, timestamps: their bits
        return _fixed_lanes(array, t.bit_width // 8)
    # Nested and rare types: their canonical text (slow, but no table this package compacts is mostly nested).
    return _bytes_hash(pa.array([None if v is None else repr(v) for v in array.to_pylist()], pa.string()))


def _fixed_lanes(array: pa.Array, width: int) -> np.ndarray:
    """The value buffer of a fixed-width array as unsigned integers (bit patterns: floats, dates, timestamps)."""
    data = array.buffers()[1]
    kind = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64, 16: np.uint64}[width]
    lanes = 2 if width == 16 else 1
    raw = np.frombuffer(data, dtype=kind)[array.offset * lanes:(array.offset + len(array)) * lanes]
    return raw.astype(np.uint64)


def _bytes_hash(array: pa.Array) -> np.ndarray:
    """A polynomial hash of each value's bytes, modulo 2⁶⁴, for the whole array at once: with prefix sums of
    ``byte·Pᵏ`` over the data buffer, a value spanning [a, b) hashes to ``(S[b] − S[a])·P⁻ᵃ`` (P is odd, so it has
    an inverse modulo 2⁶⁴), mixed with its length. Rows are taken in slices of about ``_SLICE_BYTES``."""
    n = len(array)
    wide = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    offsets: np.ndarray = np.frombuffer(array.buffers()[1], dtype=np.int64 if wide else np.int32)[
        array.offset:array.offset + n + 1].astype(np.int64)
    data = array.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    out = np.empty(n, dtype=np.uint64)
    row = 0
    while row < n:
        end = max(row + 1, int(np.searchsorted(offsets, offsets[row] + _SLICE_BYTES, side="right")) - 1)
        end = min(end, n)
        lo, hi = int(offsets[row]), int(offsets[end])
        powers, inverse = _powers(hi - lo + 1)
        with np.errstate(over="ignore"):
            prefix = np.zeros(hi - lo + 1, dtype=np.uint64)
            np.cumsum((raw[lo:hi].astype(np.uint64) + np.uint64(1)) * powers[:hi - lo], out=prefix[1:])
            starts, ends = offsets[row:end] - lo, offsets[row + 1:end + 1] - lo
            out[row:end] = ((prefix[ends] - prefix[starts]) * inverse[starts]
                            ^ (ends - starts).astype(np.uint64) * _GOLDEN)
        row = end
    return out


_SLICE_BYTES = 1 << 20
_P = 0x100000001B3  # the 64-bit FNV prime: odd, so invertible modulo 2⁶⁴
_POWERS: list[np.ndarray] = [np.ones(1, np.uint64), np.ones(1, np.uint64)]  # Pᵏ and P⁻ᵏ, k = 0, 1, …


def _powers(count: int) -> tuple[np.ndarray, np.ndarray]:
    """``Pᵏ`` and ``P⁻ᵏ`` modulo 2⁶⁴ for k below ``count`` (computed once, grown on demand)."""
    if len(_POWERS[0]) < count:
        size = max(count, 2 * len(_POWERS[0]))
        with np.errstate(over="ignore"):
            for i, base in enumerate((_P, pow(_P, -1, 2**64))):
                steps = np.full(size, base, dtype=np.uint64)
                steps[0] = 1
                _POWERS[i] = np.cumprod(steps, dtype=np.uint64)
    return _POWERS[0][:count], _POWERS[1][:count]


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: every input bit reaches every output bit."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _sum(h: np.ndarray) -> int:
    """The exact sum of the hashes, from its two 32-bit halves (no overflow below 2³² values)."""
    low = int((h & np.uint64(0xFFFFFFFF)).sum(dtype=np.uint64))
    high = int((h >> np.uint64(32)).sum(dtype=np.uint64))
    return (high << 32) + low

