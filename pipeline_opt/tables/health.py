"""A Delta table's file-size health, read from its log only.

Invariants: never lists storage (file sizes come from the log's add actions, so a table of 100,000+ files is read
in about the time delta-rs needs to replay its log); read-only; every figure is given per table and per partition.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline_opt.config import format_size
from pipeline_opt.deltatable import is_remote, open_table

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
        pct = _percentiles(sizes) if len(sizes) else [0, 0, 0]
        return cls(
            files=int(len(sizes)), bytes=int(sizes.sum()), rows=int(rows.sum()),
            p10=int(pct[0]), p50=int(pct[1]), p90=int(pct[2]), largest=int(sizes.max(initial=0)),
            files_below=int(below.sum()), files_inside=int(inside.sum()), files_above=int(above.sum()),
            bytes_below=int(sizes[below].sum()), bytes_inside=int(sizes[inside].sum()),
            bytes_above=int(sizes[above].sum()),
        )


def _percentiles(sizes: np.ndarray) -> list[int]:
    """p10/p50/p90 with numpy's linear interpolation, ~15× cheaper than ``np.percentile`` per small group."""
    ordered = np.sort(sizes)
    pos = np.array([0.1, 0.5, 0.9]) * (len(ordered) - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(ordered) - 1)
    return [int(v) for v in ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)]


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

    @property
    def share_settled(self) -> float:
        """Share of bytes that compaction cannot improve: in files inside the window, or in a partition (or
        unpartitioned table) held by one file — a partition smaller than the floor cannot reach the window."""
        groups = [p.stats for p in self.partitions] or [self.stats]
        settled = sum(s.bytes if s.files == 1 else s.bytes_inside for s in groups)
        return settled / self.stats.bytes if self.stats.bytes else 1.0

    def render(self) -> str:
        s = self.stats
        lines = [
            f"{self.path} (version {self.version})",
            f"  files {s.files:,}  size {format_size(s.bytes)}  rows {s.rows:,}",
            f"  file size p10/p50/p90 {format_size(s.p10)} / {format_size(s.p50)} / {format_size(s.p90)}",
            f"  window {format_size(self.min_size)} – {format_size(self.max_size)}: "
            f"{s.files_below:,} below, {s.files_inside:,} inside, {s.files_above:,} above "
            f"({s.share_inside:.0%} of bytes inside; {self.share_settled:.0%} settled)",
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


@dataclass
class TableFiles:
    """The live data files of one snapshot, as columns (from the log; ``deleted`` from deletion vectors)."""

    version: int
    partition_columns: list[str]
    paths: list[str]
    sizes: np.ndarray
    rows: np.ndarray
    deleted: np.ndarray
    groups: dict[tuple, np.ndarray]  # partition values (as strings or None) → file indexes
    columns: list[str] = field(default_factory=list)

    @property
    def table_bytes(self) -> int:
        return int(self.sizes.sum())

    def values(self, key: tuple) -> dict[str, Optional[str]]:
        return dict(zip(self.partition_columns, key))


def load_files(path: str, version: Optional[int] = None, storage_options=None) -> TableFiles:
    """Read the snapshot's files from the Delta log only; deletion vectors are read only if the table has them."""
    dt = open_table(path, version=version, storage_options=storage_options)
    actions = add_actions(dt)
    part_cols = list(dt.metadata().partition_columns)
    paths = actions.column("path").to_pylist() if actions.num_rows else []
    sizes, rows = _int_column(actions, "size_bytes"), _int_column(actions, "num_records")
    deleted = _deleted_rows(dt, paths) if "deletionVectors" in (dt.protocol().reader_features or []) else \
        np.zeros(len(paths), dtype=np.int64)
    columns = [f.name for f in dt.schema().fields]
    return TableFiles(dt.version(), part_cols, paths, sizes, rows, deleted, _group(actions, part_cols), columns)


def _group(actions: pa.Table, part_cols: list[str]) -> dict[tuple, np.ndarray]:
    if not actions.num_rows:
        return {}
    if not part_cols:
        return {(): np.arange(actions.num_rows)}
    # Grouping in Arrow keeps a 100,000-file log well under a second.
    cols = {c: pc.cast(actions.column(f"partition.{c}"), pa.string()) for c in part_cols}
    keyed = pa.table({**cols, "_i": pa.array(np.arange(actions.num_rows))})
    grouped = keyed.group_by(part_cols, use_threads=False).aggregate([("_i", "list")])
    keys = zip(*(grouped.column(c).to_pylist() for c in part_cols))
    lists = grouped.column("_i_list").to_pylist()
    groups = {tuple(k): np.asarray(idx) for k, idx in zip(keys, lists)}
    return dict(sorted(groups.items(), key=lambda kv: tuple("" if v is None else v for v in kv[0])))


def _deleted_rows(dt, paths: list[str]) -> np.ndarray:
    """Rows marked deleted per file: each live add action's ``deletionVector.cardinality``, read from the log.

    The log is replayed from the newest checkpoint at or below the snapshot's version (the last add of a path
    wins, as in Delta's own replay); delta-rs' ``deletion_vectors()`` is not used because it materializes every
    mask. Remote tables report zeros.
    """
    from urllib.parse import unquote

    deleted = np.zeros(len(paths), dtype=np.int64)
    if is_remote(dt.table_uri):
        return deleted
    log = Path(unquote(dt.table_uri.removeprefix("file://"))) / "_delta_log"
    cardinality: dict[str, int] = {}
    start = _read_checkpoint(log, dt.version(), cardinality)
    for v in range(start, dt.version() + 1):
        commit = log / f"{v:020d}.json"
        for line in commit.read_text().splitlines() if commit.exists() else []:
            add = json.loads(line).get("add") if '"add"' in line else None
            if add:
                cardinality[unquote(add["path"])] = int((add.get("deletionVector") or {}).get("cardinality", 0))
    for i, p in enumerate(paths):
        deleted[i] = cardinality.get(unquote(p), 0)
    return deleted


def _read_checkpoint(log: Path, version: int, cardinality: dict[str, int]) -> int:
    """Fill ``cardinality`` from the newest classic checkpoint ≤ ``version``; returns the first commit to replay."""
    import pyarrow.parquet as pq
    from urllib.parse import unquote

    found = sorted((int(f.name[:20]), f) for f in log.glob("*.checkpoint*.parquet") if int(f.name[:20]) <= version)
    if not found:
        return 0
    best = found[-1][0]
    for _, f in (x for x in found if x[0] == best):
        adds = pq.read_table(f, columns=["add"]).column("add").combine_chunks()
        valid = pc.is_valid(adds)
        paths = pc.filter(adds.field("path"), valid).to_pylist()
        dv_field = adds.type.get_field_index("deletionVector")
        cards = (pc.filter(adds.field("deletionVector").field("cardinality"), valid).to_pylist()
                 if dv_field >= 0 else [0] * len(paths))
        cardinality.update({unquote(p): int(c or 0) for p, c in zip(paths, cards)})
    return best + 1


def table_health(path: str, min_size: int = DEFAULT_MIN, max_size: int = DEFAULT_MAX,
                 version: Optional[int] = None, storage_options=None) -> TableHealth:
    """Health of the table at ``path`` (latest version unless ``version``)."""
    files = load_files(path, version=version, storage_options=storage_options)
    partitions = []
    if files.partition_columns:
        partitions = [PartitionHealth(files.values(key), SizeStats.of(files.sizes[idx], files.rows[idx],
                                                                       min_size, max_size))
                      for key, idx in files.groups.items()]
    return TableHealth(str(path), files.version, files.partition_columns, min_size, max_size,
                       SizeStats.of(files.sizes, files.rows, min_size, max_size), partitions)


def _int_column(actions: pa.Table, name: str) -> np.ndarray:
    if name not in actions.column_names:
        return np.zeros(actions.num_rows, dtype=np.int64)
    return pc.fill_null(actions.column(name), 0).to_numpy().astype(np.int64, copy=False)
