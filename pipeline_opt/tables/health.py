"""A Delta table's file-size health, read from its log only.

Invariants: never lists storage (file sizes come from the log's add actions, so a table of 100,000+ files is read
in about the time delta-rs needs to replay its log); read-only; every figure is given per table and per partition.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline_opt.config import format_size
from pipeline_opt.deltatable import open_table

DEFAULT_MIN = 16 * 10**6
DEFAULT_MAX = 10**9


@dataclass
class SizeStats:
    """Counts and sizes of a set of data files against the window ``[min_size, max_size]``."""

    files: int
    bytes: int
    rows: int
    p10: int
    p50: int
    p90: int
    largest: int
    files_below: int
    files_inside: int
    files_above: int
    bytes_below: int
    bytes_inside: int
    bytes_above: int

    @property
    def share_inside(self) -> float:
        """Share of bytes in files inside the window (1.0 for an empty table)."""
        return self.bytes_inside / self.bytes if self.bytes else 1.0

    @classmethod
    def of(cls, sizes: np.ndarray, rows: np.ndarray, min_size: int, max_size: int) -> "SizeStats":
        below, above = sizes < min_size, sizes > max_size
        inside = ~below & ~above
        pct = np.percentile(sizes, [10, 50, 90]).astype(int) if len(sizes) else [0, 0, 0]
        return cls(
            files=int(len(sizes)), bytes=int(sizes.sum()), rows=int(rows.sum()),
            p10=int(pct[0]), p50=int(pct[1]), p90=int(pct[2]), largest=int(sizes.max(initial=0)),
            files_below=int(below.sum()), files_inside=int(inside.sum()), files_above=int(above.sum()),
            bytes_below=int(sizes[below].sum()), bytes_inside=int(sizes[inside].sum()),
            bytes_above=int(sizes[above].sum()),
        )


@dataclass
class PartitionHealth:
    values: dict[str, Optional[str]]
    stats: SizeStats


@dataclass
class TableHealth:
    path: str
    version: int
    partition_columns: list[str]
    min_size: int
    max_size: int
    stats: SizeStats
    partitions: list[PartitionHealth] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.stats.files_below == 0 and self.stats.files_above == 0

    def render(self) -> str:
        s = self.stats
        lines = [
            f"{self.path} (version {self.version})",
            f"  files {s.files:,}  size {format_size(s.bytes)}  rows {s.rows:,}",
            f"  file size p10/p50/p90 {format_size(s.p10)} / {format_size(s.p50)} / {format_size(s.p90)}",
            f"  window {format_size(self.min_size)} – {format_size(self.max_size)}: "
            f"{s.files_below:,} below, {s.files_inside:,} inside, {s.files_above:,} above "
            f"({s.share_inside:.0%} of bytes inside)",
        ]
        if self.partitions:
            lines.append(f"  partitions {len(self.partitions)} by {', '.join(self.partition_columns)}")
            for p in self.partitions[:20]:
                key = ",".join(f"{k}={v}" for k, v in p.values.items())
                lines.append(f"    {key}: {p.stats.files:,} files, {format_size(p.stats.bytes)}, "
                             f"{p.stats.files_below:,} below window")
            if len(self.partitions) > 20:
                lines.append(f"    … {len(self.partitions) - 20} more")
        return "\n".join(lines)


def add_actions(dt) -> pa.Table:
    """The snapshot's add actions as a pyarrow table (path, size_bytes, num_records, partition.* …)."""
    return pa.table(dt.get_add_actions(flatten=True))


def table_health(path: str, min_size: int = DEFAULT_MIN, max_size: int = DEFAULT_MAX,
                 version: Optional[int] = None, storage_options=None) -> TableHealth:
    """Health of the table at ``path`` (latest version unless ``version``)."""
    dt = open_table(path, version=version, storage_options=storage_options)
    actions = add_actions(dt)
    part_cols = list(dt.metadata().partition_columns)
    sizes = _int_column(actions, "size_bytes")
    rows = _int_column(actions, "num_records")
    partitions = []
    if part_cols and actions.num_rows:
        keys = [actions.column(f"partition.{c}").to_pylist() for c in part_cols]
        groups: dict[tuple, list[int]] = {}
        for i, key in enumerate(zip(*keys)):
            groups.setdefault(key, []).append(i)
        for key in sorted(groups, key=lambda k: tuple("" if v is None else str(v) for v in k)):
            idx = np.asarray(groups[key])
            values = {c: None if v is None else str(v) for c, v in zip(part_cols, key)}
            partitions.append(PartitionHealth(values, SizeStats.of(sizes[idx], rows[idx], min_size, max_size)))
    return TableHealth(str(path), dt.version(), part_cols, min_size, max_size,
                       SizeStats.of(sizes, rows, min_size, max_size), partitions)


def _int_column(actions: pa.Table, name: str) -> np.ndarray:
    if name not in actions.column_names:
        return np.zeros(actions.num_rows, dtype=np.int64)
    return pc.fill_null(actions.column(name), 0).to_numpy().astype(np.int64, copy=False)
