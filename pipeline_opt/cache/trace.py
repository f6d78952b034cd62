"""Request traces as numpy arrays: oracleGeneral binary (memory-mapped), CSV ``time,key,size``, our access logs.

Invariants: a ``Trace`` holds three equal-length arrays (``times`` uint64, ``keys`` int64 dense ids or raw ids,
``sizes`` int64 in ``1..MAX_SIZE``); nothing is held per record as a Python object. Corrupt input (truncated,
not UTF-8, a size or time that is negative, NaN or beyond its bound) raises ``TraceError`` naming the file and the
record (0-based index for binary, line number for CSV).
"""
from __future__ import annotations

import csv
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline_opt.errors import PipelineOptError
from pipeline_opt.units import MAX_SIZE

ORACLE_DTYPE = np.dtype([("time", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next", "<i8")])
FORMATS = ("oracle", "csv")


class TraceError(PipelineOptError):
    """A trace file is missing, truncated or holds an impossible record."""


@dataclass
class Trace:
    name: str
    times: np.ndarray
    keys: np.ndarray
    sizes: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    def head(self, n: int) -> "Trace":
        return Trace(self.name, self.times[:n], self.keys[:n], self.sizes[:n])

    @property
    def working_set_bytes(self) -> int:
        """Bytes of the distinct objects, each at the size of its first request."""
        _, first = np.unique(self.keys, return_index=True)
        return int(self.sizes[first].sum())


def read_trace(path: str | Path, fmt: str = "oracle") -> Trace:
    if fmt not in FORMATS:
        raise TraceError(f"unknown trace format {fmt!r}; use one of {', '.join(FORMATS)}")
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"{p}: trace file not found")
    return read_oracle(p) if fmt == "oracle" else read_csv(p)


def read_oracle(path: Path) -> Trace:
    """Memory-maps 24-byte records ``u32 time, u64 id, u32 size, i64 next``; checks sizes and next-pointers."""
    nbytes = path.stat().st_size
    if nbytes % ORACLE_DTYPE.itemsize:
        n = nbytes // ORACLE_DTYPE.itemsize
        raise TraceError(f"{path}: record {n} is truncated ({nbytes} bytes is not a multiple of 24)")
    if nbytes == 0:
        raise TraceError(f"{path}: empty trace")
    rec = np.memmap(path, dtype=ORACLE_DTYPE, mode="r")
    bad = np.flatnonzero(rec["size"] == 0)
    if bad.size:
        raise TraceError(f"{path}: record {bad[0]} has size 0")
    nxt = rec["next"]
    idx = np.arange(len(rec), dtype=np.int64)
    bad = np.flatnonzero((nxt != -1) & ((nxt <= idx) | (nxt >= len(rec))))
    if bad.size:
        raise TraceError(f"{path}: record {bad[0]} has next={int(nxt[bad[0]])}, not -1 or a later record")
    return Trace(path.name, rec["time"].astype(np.uint64), rec["id"].astype(np.int64), rec["size"].astype(np.int64))


def read_csv(path: Path) -> Trace:
    """Streams a CSV with header ``time,key,size`` (extra columns ignored); keys become dense integer ids."""
    ids: dict[str, int] = {}
    times, keys, sizes = array("Q"), array("q"), array("q")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            ti, ki, si = _columns(path, next(reader, []))
            for row in reader:
                if not row:
                    continue
                t, key, size = _record(path, reader.line_num, row, ti, ki, si)
                times.append(t)
                keys.append(ids.setdefault(key, len(ids)))
                sizes.append(size)
    except UnicodeDecodeError as e:
        raise TraceError(f"{path}: not UTF-8 text (byte {e.start} of a read block); save the trace as UTF-8") from None
    except csv.Error as e:
        raise TraceError(f"{path}: not CSV: {e}") from None
    if not keys:
        raise TraceError(f"{path}: no records after the header")
    return Trace(path.name, np.frombuffer(times, np.uint64), np.frombuffer(keys, np.int64),
                 np.frombuffer(sizes, np.int64))


def _columns(path: Path, row: list[str]) -> tuple[int, int, int]:
    header = [h.strip().lower() for h in row]
    missing = [c for c in ("time", "key", "size") if c not in header]
    if missing:
        raise TraceError(f"{path}: header {header[:10]} lacks column(s) {missing}; expected time,key,size")
    ti, ki, si = (header.index(c) for c in ("time", "key", "size"))
    return ti, ki, si


def _record(path: Path, line: int, row: list[str], ti: int, ki: int, si: int) -> tuple[int, str, int]:
    """(time, key, size) of one row; the time may be written as a float (``12.0``), the size must be whole."""
    try:
        t_float, size, key = float(row[ti]), int(row[si]), row[ki]
    except (ValueError, IndexError):
        raise TraceError(f"{path}: line {line} is not time,key,size: {row[:5]!r}") from None
    if not 0 <= t_float < 2**64 or not 0 < size <= MAX_SIZE:  # NaN fails both comparisons
        raise TraceError(f"{path}: line {line} has time {row[ti][:30]!r} and size {row[si][:30]!r}; "
                         f"expected 0 <= time < 2**64 and 0 < size <= {MAX_SIZE} (1 PiB)")
    return int(t_float), key, size


def write_csv(trace: Trace, path: str | Path) -> Path:
    p = Path(path)
    with p.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time", "key", "size"])
        w.writerows(zip(trace.times.tolist(), trace.keys.tolist(), trace.sizes.tolist()))
    return p


def next_use(keys: np.ndarray) -> np.ndarray:
    """Index of the next request of the same key, or len(keys) if none (vectorised, stable)."""
    n = len(keys)
    order = np.argsort(keys, kind="stable")
    nxt = np.full(n, n, dtype=np.int64)
    same = keys[order[1:]] == keys[order[:-1]]
    nxt[order[:-1][same]] = order[1:][same]
    return nxt
