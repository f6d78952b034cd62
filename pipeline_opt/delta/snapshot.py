"""A Delta table at one version, read from its log: the one reader of the live data files.

Invariants: the file list comes from the Delta log only (delta-rs' replay of the add actions), never from a folder
listing, so removed and overwritten files are never seen; each file's deleted rows come from its deletion-vector
descriptor, replayed by ``delta.log`` the same way for local and remote tables; column names are logical (column
mapping is resolved to physical Parquet names here). The columnar views (``sizes``, ``rows``, ``deleted``,
``groups``) cost one pass over the add actions, so a 100,000-file log is read in about the time delta-rs needs;
``files`` (one ``DataFile`` each, for readers) is built on first use. A ``Snapshot`` holds no ``DeltaTable`` and
pickles cleanly into worker processes (delta-rs panics in a forked child that inherited one).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping, Optional
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline_opt.delta.fs import resolve
from pipeline_opt.delta.log import deletion_vectors
from pipeline_opt.delta.table import open_table
from pipeline_opt.errors import DeltaLogError


@dataclass(frozen=True)
class DataFile:
    """One data file of the snapshot; ``dv`` is its deletion-vector descriptor (None when no row is deleted)."""

    path: str                      # relative to the table root, as in the Delta log (decoded)
    size: int
    num_records: int               # physical rows in the Parquet file
    live_rows: int                 # rows left after the deletion vector (num_records - dv cardinality)
    partition: Mapping[str, object]  # logical partition column -> value
    dv: Optional[Mapping] = None
    stats: Mapping[str, tuple] = field(default_factory=dict)  # logical column -> (min, max) from the add action


@dataclass(frozen=True)
class Snapshot:
    """The table at ``version``: its live files (``actions``, one row each), logical schema and column names."""

    uri: str
    version: int
    table_id: str
    schema: pa.Schema              # logical names, in table order
    physical: Mapping[str, str]    # logical -> physical Parquet column name
    partition_columns: tuple
    actions: pa.Table = field(repr=False)  # delta-rs' flattened add actions
    vectors: Mapping[str, Mapping] = field(repr=False)  # relative path -> deletion-vector descriptor

    # -- columnar views (health, planning) ------------------------------------------------------------------------
    @cached_property
    def paths(self) -> list[str]:
        return [unquote(p) for p in self.actions.column("path").to_pylist()] if self.actions.num_rows else []

    @cached_property
    def sizes(self) -> np.ndarray:
        return _int_column(self.actions, "size_bytes")

    @cached_property
    def rows(self) -> np.ndarray:
        """Physical rows per file from the log's stats (0 where a writer left them out)."""
        return _int_column(self.actions, "num_records")

    @cached_property
    def deleted(self) -> np.ndarray:
        """Rows each file's deletion vector deletes."""
        if not self.vectors:
            return np.zeros(len(self.paths), dtype=np.int64)
        return np.array([int((self.vectors.get(p) or {}).get("cardinality", 0)) for p in self.paths],
                        dtype=np.int64)

    @cached_property
    def groups(self) -> dict[tuple, np.ndarray]:
        """Partition values (as strings, None for null) → file indexes, in partition order."""
        return _group(self.actions, self.partition_columns, self.physical)

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    @property
    def table_bytes(self) -> int:
        return int(self.sizes.sum())

    @property
    def live_rows(self) -> int:
        return int((self.rows - self.deleted).sum())

    def values(self, key: tuple) -> dict[str, Optional[str]]:
        return dict(zip(self.partition_columns, key))

    # -- per-file view (readers) ------------------------------------------------------------------------------
    @cached_property
    def files(self) -> tuple[DataFile, ...]:
        nested = _nest(self.actions, self.partition_columns, self.physical)
        return tuple(_data_file(row, self) for row in nested)

    @property
    def num_rows(self) -> int:
        """Live rows, from each file's exact row count (read from its footer where the log has no stats)."""
        return sum(f.live_rows for f in self.files)

    def file_uri(self, f: DataFile) -> str:
        return self.uri.rstrip("/") + "/" + f.path


def read_snapshot(path: str, version: Optional[int] = None,
                  storage_options: Optional[Mapping[str, str]] = None) -> Snapshot:
    """The snapshot of ``path`` at ``version`` (latest when None), from the Delta log."""
    dt = open_table(path, version=version, storage_options=storage_options)
    schema, physical = _logical_schema(dt)
    uri = dt.table_uri.rstrip("/")
    vectors = {}
    if "deletionVectors" in (dt.protocol().reader_features or []):
        fs, root = resolve(uri, storage_options)
        vectors = deletion_vectors(fs, root.rstrip("/") + "/_delta_log", dt.version())
    return Snapshot(uri=uri, version=dt.version(), table_id=dt.metadata().id, schema=schema, physical=physical,
                    partition_columns=tuple(dt.metadata().partition_columns),
                    actions=pa.table(dt.get_add_actions(flatten=True)), vectors=vectors)


def _logical_schema(dt) -> tuple[pa.Schema, dict]:
    """Logical Arrow schema plus logical → physical names (identity without column mapping)."""
    delta_schema = dt.schema()
    arrow = pa.schema(delta_schema.to_arrow())
    physical = {}
    for f in delta_schema.fields:
        meta = f.metadata or {}
        physical[f.name] = str(meta.get("delta.columnMapping.physicalName", f.name))
    return pa.schema([pa.field(f.name, f.type, f.nullable) for f in arrow]), physical


def _int_column(actions: pa.Table, name: str) -> np.ndarray:
    if name not in actions.column_names:
        return np.zeros(actions.num_rows, dtype=np.int64)
    return pc.fill_null(actions.column(name), 0).to_numpy().astype(np.int64, copy=False)


def _partition_column(actions: pa.Table, column: str, physical: Mapping[str, str]) -> Optional[pa.ChunkedArray]:
    """The add actions' values of partition ``column`` (delta-rs names them logically or, with column mapping,
    physically); None when the log holds none."""
    for name in (f"partition.{column}", f"partition.{physical.get(column, column)}"):
        if name in actions.column_names:
            return actions.column(name)
    return None


def _group(actions: pa.Table, part_cols: tuple, physical: Mapping[str, str]) -> dict[tuple, np.ndarray]:
    if not actions.num_rows:
        return {}
    if not part_cols:
        return {(): np.arange(actions.num_rows)}
    # Grouping in Arrow keeps a 100,000-file log well under a second.
    cols = {}
    for c in part_cols:
        values = _partition_column(actions, c, physical)
        cols[c] = pa.nulls(actions.num_rows, pa.string()) if values is None else pc.cast(values, pa.string())
    keyed = pa.table({**cols, "_i": pa.array(np.arange(actions.num_rows))})
    grouped = keyed.group_by(list(part_cols), use_threads=False).aggregate([("_i", "list")])
    keys = zip(*(grouped.column(c).to_pylist() for c in part_cols))
    lists = grouped.column("_i_list").to_pylist()
    groups = {tuple(k): np.asarray(idx) for k, idx in zip(keys, lists)}
    return dict(sorted(groups.items(), key=lambda kv: tuple("" if v is None else v for v in kv[0])))


def _nest(actions: pa.Table, part_cols: tuple, physical: Mapping[str, str]) -> list[dict]:
    """One dict per add action: path, size, records, partition values, and (min, max) of top-level columns."""
    names = set(actions.column_names)
    plain = actions.select([c for c in ("path", "size_bytes", "num_records") if c in names]).to_pylist()
    parts = {c: values.to_pylist() for c in part_cols
             if (values := _partition_column(actions, c, physical)) is not None}
    stats = {}
    for logical, phys in physical.items():
        lo, hi = f"min.{phys}", f"max.{phys}"
        if lo in names and hi in names:
            stats[logical] = (actions.column(lo).to_pylist(), actions.column(hi).to_pylist())
    for i, row in enumerate(plain):
        row["partition"] = {c: values[i] for c, values in parts.items()}
        row["stats"] = {c: (lo[i], hi[i]) for c, (lo, hi) in stats.items() if lo[i] is not None and hi[i] is not None}
    return plain


def _data_file(row: dict, snap: Snapshot) -> DataFile:
    rel = unquote(row["path"])
    if "://" in rel or rel.startswith("/"):  # absolute paths (shallow clones) keep their own root
        raise DeltaLogError(f"{snap.uri}: absolute data file paths are not supported ({rel})")
    num = row.get("num_records")
    if num is None:
        num = _footer_rows(snap.uri + "/" + rel)
    dv = snap.vectors.get(rel)
    live = int(num) - (int(dv["cardinality"]) if dv else 0)
    partition = {c: row["partition"].get(c) for c in snap.partition_columns}
    return DataFile(path=rel, size=int(row["size_bytes"]), num_records=int(num), live_rows=live,
                    partition=partition, dv=dict(dv) if dv else None, stats=row["stats"])


def _footer_rows(uri: str) -> int:
    """Row count from the Parquet footer, for add actions written without stats."""
    import pyarrow.parquet as pq

    fs, p = resolve(uri, None)
    with fs.open_input_file(p) as fh:
        return pq.ParquetFile(fh).metadata.num_rows
