"""A Delta snapshot pinned at one version, reduced to plain data a worker process can read.

Invariants: the file list comes from the Delta log only (delta-rs), never from a folder listing, so removed and
overwritten files are never read; every file carries its deletion-vector keep mask (packed bits) and its live row
count; column names are logical (column mapping is resolved to physical Parquet names here). A ``Snapshot`` holds
no ``DeltaTable`` and pickles cleanly into worker processes (delta-rs panics in a forked child that inherited one).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional
from urllib.parse import unquote

import pyarrow as pa

from pipeline_opt.deltatable import open_table
from pipeline_opt.loader.deletion_vectors import descriptors
from pipeline_opt.loader.errors import LoaderError


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
    """The table at ``version``: its files, logical schema and logical → physical column names."""

    uri: str
    version: int
    table_id: str
    schema: pa.Schema              # logical names, in table order
    physical: Mapping[str, str]    # logical -> physical Parquet column name
    partition_columns: tuple
    files: tuple = field(repr=False)

    @property
    def num_rows(self) -> int:
        return sum(f.live_rows for f in self.files)

    def file_uri(self, f: DataFile) -> str:
        return self.uri.rstrip("/") + "/" + f.path


def load_snapshot(path: str, version: Optional[int] = None,
                  storage_options: Optional[Mapping[str, str]] = None) -> Snapshot:
    """Read the snapshot of ``path`` at ``version`` (latest when None) from the Delta log."""
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 0):
        raise LoaderError(f"{path}: version must be a non-negative integer, got {version!r}")
    dt = open_table(path, version=version, storage_options=storage_options)
    schema, physical = _logical_schema(dt)
    parts = tuple(dt.metadata().partition_columns)
    uri = dt.table_uri.rstrip("/")
    vectors = _vectors(dt, uri, storage_options)
    actions = pa.table(dt.get_add_actions(flatten=False))
    files = tuple(_data_file(row, parts, physical, vectors, uri) for row in actions.to_pylist())
    return Snapshot(uri=uri, version=dt.version(), table_id=dt.metadata().id, schema=schema,
                    physical=physical, partition_columns=parts, files=files)


def _logical_schema(dt) -> tuple[pa.Schema, dict]:
    """Logical Arrow schema plus logical → physical names (identity without column mapping)."""
    delta_schema = dt.schema()
    arrow = pa.schema(delta_schema.to_arrow())
    physical = {}
    for f in delta_schema.fields:
        meta = f.metadata or {}
        physical[f.name] = str(meta.get("delta.columnMapping.physicalName", f.name))
    return pa.schema([pa.field(f.name, f.type, f.nullable) for f in arrow]), physical


def _vectors(dt, uri: str, storage_options) -> dict:
    """Relative path → deletion-vector descriptor; empty unless the protocol enables deletion vectors."""
    if "deletionVectors" not in (dt.protocol().reader_features or []):
        return {}
    from pipeline_opt.loader.fs import resolve

    fs, root = resolve(uri, storage_options)
    return descriptors(fs, root.rstrip("/") + "/_delta_log", dt.version())


def _data_file(row: dict, parts: tuple, physical: Mapping[str, str], vectors: dict, uri: str) -> DataFile:
    rel = unquote(row["path"])
    if "://" in rel or rel.startswith("/"):  # absolute paths (shallow clones) keep their own root
        raise LoaderError(f"{uri}: absolute data file paths are not supported ({rel})")
    num = row.get("num_records")
    if num is None:
        num = _footer_rows(uri + "/" + rel)
    pvals = row.get("partition") or {}
    partition = {c: pvals.get(c, pvals.get(physical.get(c, c))) for c in parts}
    dv = vectors.get(rel)
    live = int(num) - (int(dv["cardinality"]) if dv else 0)
    return DataFile(path=rel, size=int(row["size_bytes"]), num_records=int(num), live_rows=live,
                    partition=partition, dv=dict(dv) if dv else None, stats=_min_max(row, physical))


def _min_max(row: dict, physical: Mapping[str, str]) -> dict:
    """Logical column → (min, max) for top-level columns with both stats (nested stats are ignored)."""
    lows, highs = row.get("min") or {}, row.get("max") or {}
    out = {}
    for logical, phys in physical.items():
        lo, hi = lows.get(phys), highs.get(phys)
        if lo is not None and hi is not None and not isinstance(lo, dict):
            out[logical] = (lo, hi)
    return out


def _footer_rows(uri: str) -> int:
    """Row count from the Parquet footer, for add actions written without stats."""
    import pyarrow.parquet as pq

    from pipeline_opt.loader.fs import resolve

    fs, p = resolve(uri, None)
    with fs.open_input_file(p) as fh:
        return pq.ParquetFile(fh).metadata.num_rows
