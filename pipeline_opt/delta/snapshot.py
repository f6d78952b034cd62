"""A Delta table at one version, read from its log: the one reader of the live data files.

Invariants: the file list comes from the Delta log only (delta-rs' replay of the add actions), never from a folder
listing, so removed and overwritten files are never seen; each file's deleted rows come from its deletion-vector
descriptor, replayed by ``delta.log`` the same way for local and remote tables; column names are logical (column
mapping is resolved to physical Parquet names here). The columnar views (``sizes``, ``rows``, ``deleted``,
``groups``) cost one pass over the add actions, so a 100,000-file log is read in about the time delta-rs needs;
``files`` (one ``DataFile`` each, for readers) is built on first use; no view loops over the files in Python.
A ``Snapshot`` holds no ``DeltaTable`` and pickles cleanly into worker processes (delta-rs panics in a forked child
that inherited one).

``read_file_table`` (health) reads the same figures without delta-rs: the newest checkpoint with Parquet column
projection plus the JSON commits after it, replayed as ``delta.log`` replays them; it gives the same sizes, rows,
deleted rows and partition groups as ``read_snapshot`` or None (then ``read_snapshot`` reads the table and names
any damage) wherever it cannot vouch for that or would be slower: unknown reader features, partition types delta-rs
re-types, more JSON after the checkpoint than 1 MiB plus an eighth of the checkpoint, a missing commit or
checkpoint, anything it cannot parse. A 1,000,000-file checkpoint costs it about a third of delta-rs' own replay.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping, Optional
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline_opt.delta.fs import resolve
from pipeline_opt.delta.log import deletion_vectors
from pipeline_opt.delta.recovery import real_uri
from pipeline_opt.delta.table import open_table
from pipeline_opt.errors import DeltaLogError, PipelineOptError


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


class _FileColumns:
    """Per-file columns of the ``actions`` table, shared by ``Snapshot`` and ``FileTable``."""

    actions: pa.Table

    @cached_property
    def sizes(self) -> np.ndarray:
        return _int_column(self.actions, "size_bytes")

    @cached_property
    def rows(self) -> np.ndarray:
        """Physical rows per file from the log's stats (0 where a writer left them out)."""
        return _int_column(self.actions, "num_records")


@dataclass(frozen=True)
class Snapshot(_FileColumns):
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
        return _decoded_paths(self.actions).to_pylist() if self.actions.num_rows else []


    @cached_property
    def deleted(self) -> np.ndarray:
        """Rows each file's deletion vector deletes."""
        n = self.actions.num_rows
        if not self.vectors or not n:
            return np.zeros(n, dtype=np.int64)
        # One hash lookup in Arrow, not a Python loop over every file.
        keys = list(self.vectors)
        cardinality = np.array([int(self.vectors[p].get("cardinality", 0)) for p in keys] + [0], dtype=np.int64)
        at = pc.index_in(_decoded_paths(self.actions), value_set=pa.array(keys, pa.string()))
        return cardinality[pc.fill_null(at, len(keys)).to_numpy(zero_copy_only=False)]

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
    uri = real_uri(dt).rstrip("/")
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


def _decoded_paths(actions: pa.Table) -> pa.Array:
    """The add actions' paths, URL-decoded as in the log; only paths holding a ``%`` go through Python."""
    return _decode(actions.column("path").combine_chunks())


def _decode(paths) -> pa.Array:
    col = pc.cast(paths.combine_chunks() if isinstance(paths, pa.ChunkedArray) else paths, pa.string())
    data = col.buffers()[2]
    if data is None or b"%" not in data.to_pybytes():  # one memchr over the bytes: no path is quoted
        return col
    quoted = pc.match_substring(col, "%")
    if not pc.any(quoted).as_py():
        return col
    decoded = [unquote(p) for p in pc.filter(col, quoted).to_pylist()]
    return pc.replace_with_mask(col, quoted, pa.array(decoded, pa.string()))


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
    n = actions.num_rows
    if not part_cols:
        return {(): np.arange(n)}
    # Vectorised: each column's values become dictionary codes (nulls a code of their own), the codes one group id
    # per file, and a stable sort by that id the files of each group, in file order; no Python loop per file.
    key = np.zeros(n, dtype=np.int64)
    decode: list = []
    for c in part_cols:
        values = _partition_column(actions, c, physical)
        col = pa.nulls(n, pa.string()) if values is None else pc.cast(values, pa.string())
        encoded = pc.dictionary_encode(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)
        names = encoded.dictionary.to_pylist() + [None]
        codes = pc.fill_null(encoded.indices, len(names) - 1).to_numpy(zero_copy_only=False).astype(np.int64)
        key = key * len(names) + codes
        if decode:  # dense again, so the key never overflows
            key = np.unique(key, return_inverse=True)[1].reshape(-1).astype(np.int64)
        decode.append((names, codes))
    key = key.astype(np.min_scalar_type(int(key.max())), copy=False)  # small ids: numpy's stable sort is a radix sort
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key)
    counts = counts[counts > 0]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    firsts = order[starts]
    groups = {}
    for first, idx in zip(firsts.tolist(), np.split(order, starts[1:])):
        groups[tuple(names[codes[first]] for names, codes in decode)] = idx
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


# -- the log-only file table (health) ---------------------------------------------------------------------------
# What the fast reader can vouch gives the same figures as delta-rs: reader features whose effect on the file list
# it replays, and partition types whose value in the log is already what delta-rs' typed value casts back to.
_FAST_READER_FEATURES = frozenset({"deletionVectors", "columnMapping", "timestampNtz", "v2Checkpoint",
                                   "vacuumProtocolCheck"})
_FAST_PARTITION_TYPES = frozenset({"string", "byte", "short", "integer", "long", "date"})
# JSON commits after the checkpoint are replayed in Python, a few times slower per byte than delta-rs, while a
# projected checkpoint read is several times faster: the fast reader takes a tail up to 1 MiB + 1/8 of the checkpoint.
_FAST_TAIL_BYTES = 1 << 20
_COMMIT_NAME = re.compile(r"^\d{20}\.json$")


class _Unsure(Exception):
    """The fast reader cannot vouch for this log; delta-rs reads it (and names whatever is wrong)."""


@dataclass(frozen=True)
class FileTable(_FileColumns):
    """The live files of a table at ``version`` as columns only: sizes, rows, deleted rows and partition values,
    what health needs. ``actions`` has ``path`` (decoded), ``size_bytes``, ``num_records``, ``deleted_rows`` and
    ``partition.<column>`` (the log's strings); the views below are those of ``Snapshot``."""

    uri: str
    version: int
    partition_columns: tuple
    actions: pa.Table = field(repr=False)

    @cached_property
    def paths(self) -> list[str]:
        return self.actions.column("path").to_pylist()


    @cached_property
    def deleted(self) -> np.ndarray:
        return _int_column(self.actions, "deleted_rows")

    @cached_property
    def groups(self) -> dict[tuple, np.ndarray]:
        return _group(self.actions, self.partition_columns, {})

    def values(self, key: tuple) -> dict[str, Optional[str]]:
        return dict(zip(self.partition_columns, key))


def read_file_table(path: str, version: Optional[int] = None,
                    storage_options: Optional[Mapping[str, str]] = None) -> Optional[FileTable]:
    """The live files of ``path`` at ``version`` read from the log with pyarrow alone, or None where the fast
    reader cannot vouch for the log (then ``read_snapshot`` reads it, and names any damage).

    One listing of ``_delta_log``; the newest complete checkpoint at or below the version is read with column
    projection (add path, size, partition values, stats, deletion-vector cardinality; metaData and protocol), the
    JSON commits after it are replayed as ``delta.log`` replays them (removes before adds within a commit). No
    delta-rs table is opened, so a 1,000,000-file checkpoint costs one projected Parquet read, not a full replay.
    """
    try:
        return _read_file_table(str(path), version, storage_options)
    except (_Unsure, PipelineOptError, OSError, ValueError, KeyError, TypeError, AttributeError, pa.ArrowException):
        return None


def _read_file_table(path: str, version: Optional[int], storage_options) -> FileTable:
    from pipeline_opt.delta import log as replay
    from pipeline_opt.delta.paths import check_local_table, is_remote

    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 0):
        raise _Unsure
    uri = path if is_remote(path) else str(check_local_table(path))
    fs, root = resolve(uri, storage_options)
    log_dir = root.rstrip("/") + "/_delta_log"
    listing = {i.base_name: i.size or 0 for i in fs.get_file_info(pafs.FileSelector(log_dir))}
    commits = {int(name[:20]): size for name, size in listing.items() if _COMMIT_NAME.match(name)}
    checkpoints = replay._checkpoints(fs, log_dir, 2**63 - 1)
    latest = max([*commits, *checkpoints], default=-1)
    version = latest if version is None else version
    hinted = replay._hinted_checkpoint(fs, log_dir)
    if latest < 0 or version > latest or (hinted is not None and hinted not in checkpoints):
        raise _Unsure
    start = max((v for v in checkpoints if v <= version), default=-1)
    tail = range(start + 1, version + 1)
    checkpoint_bytes = sum(listing.get(name, 0) for name in checkpoints.get(start, []))
    if any(v not in commits for v in tail) or sum(commits[v] for v in tail) > _FAST_TAIL_BYTES + checkpoint_bytes // 8:
        raise _Unsure
    state: dict = {"parts": [], "json_adds": {}}
    for name in sorted(checkpoints.get(start, [])):
        _checkpoint_part(fs, f"{log_dir}/{name}", log_dir, state)
    changed: dict[str, Optional[tuple]] = {}  # decoded path → (size, records, partition values, deleted) or None
    for name in state["json_adds"]:  # adds a v2 checkpoint keeps in its JSON top-level file
        changed[name] = state["json_adds"][name]
    for v in tail:
        for action in sorted(replay._commit(fs, log_dir, v), key=lambda a: "add" in a):
            _tail_action(action, changed, state)
    protocol, meta = state.get("protocol"), state.get("metaData")
    if not protocol or not meta or int(protocol.get("minReaderVersion") or 0) > 3 \
            or not set(protocol.get("readerFeatures") or []) <= _FAST_READER_FEATURES:
        raise _Unsure
    part_cols = tuple(meta.get("partitionColumns") or [])
    fields = {f["name"]: f for f in json.loads(meta["schemaString"])["fields"]}
    physical = {}
    for c in part_cols:
        if fields[c]["type"] not in _FAST_PARTITION_TYPES:
            raise _Unsure
        physical[c] = str((fields[c].get("metadata") or {}).get("delta.columnMapping.physicalName", c))
    tables = [_checkpoint_columns(p, part_cols, physical, changed) for p in state["parts"]]
    live = {p: row for p, row in changed.items() if row is not None}
    tables.append(pa.table({"path": pa.array(list(live), pa.string()),
                            "size_bytes": pa.array([r[0] for r in live.values()], pa.int64()),
                            "num_records": pa.array([r[1] for r in live.values()], pa.int64()),
                            "deleted_rows": pa.array([r[3] for r in live.values()], pa.int64()),
                            **{f"partition.{c}": pa.array([_value(r[2], c, physical) for r in live.values()],
                                                          pa.string()) for c in part_cols}}))
    actions = pa.concat_tables(tables)
    for c in part_cols:  # delta-rs reads an empty partition string its own way: let it
        if pc.any(pc.equal(actions.column(f"partition.{c}"), "")).as_py():
            raise _Unsure
    return FileTable(uri=uri.rstrip("/"), version=version, partition_columns=part_cols, actions=actions)


def _checkpoint_part(fs: pafs.FileSystem, path: str, log_dir: str, state: dict) -> None:
    """One checkpoint part (or v2 sidecar): its adds' columns, projected, plus its metaData and protocol."""
    if path.endswith(".json"):  # a v2 checkpoint's top-level file: JSON lines of actions
        from pipeline_opt.delta.log import json_lines

        for action in json_lines(fs, path):
            if "sidecar" in action:
                _checkpoint_part(fs, f"{log_dir}/_sidecars/{unquote(action['sidecar']['path'])}", log_dir, state)
            else:
                _tail_action(action, state["json_adds"], state)
        return
    with fs.open_input_file(path) as fh:
        pf = pq.ParquetFile(fh)
        schema = pf.schema_arrow
        columns = []
        for top, wanted in (("add", ("path", "size", "partitionValues", "stats", "stats_parsed.numRecords",
                                     "deletionVector.cardinality")),
                            ("metaData", ("schemaString", "partitionColumns")),
                            ("protocol", ("minReaderVersion", "readerFeatures")), ("sidecar", ("path",))):
            if top in schema.names:
                columns += [f"{top}.{w}" for w in wanted if _has_field(schema.field(top).type, w.split("."))]
        table = pf.read(columns=columns) if columns else None
    if table is None:
        return
    for top in ("metaData", "protocol"):
        if top in table.column_names:
            column = table.column(top).combine_chunks()
            rows = pc.filter(column, pc.is_valid(column)).to_pylist()
            if rows:
                state[top] = rows[-1]
    if "add" in table.column_names:
        state["parts"].append(_flat(table.select(["add"])))
    if "sidecar" in table.column_names:  # v2 checkpoints keep their add actions in sidecar files
        for side in table.column("sidecar").to_pylist():
            if side is not None:
                _checkpoint_part(fs, f"{log_dir}/_sidecars/{unquote(side['path'])}", log_dir, state)


def _has_field(struct: pa.DataType, names: list[str]) -> bool:
    for name in names:
        if not pa.types.is_struct(struct) or struct.get_field_index(name) < 0:
            return False
        struct = struct.field(name).type
    return True


def _tail_action(action: Mapping, changed: dict, state: dict) -> None:
    """One JSON action replayed onto ``changed`` (decoded path → file figures, None once removed)."""
    if "add" in action:
        add = action["add"]
        stats = json.loads(add["stats"]) if add.get("stats") else {}
        records = stats.get("numRecords") if isinstance(stats, dict) else None
        dv = add.get("deletionVector")
        changed[unquote(add["path"])] = (int(add["size"]), None if records is None else int(records),
                                         add.get("partitionValues") or {}, int(dv["cardinality"]) if dv else 0)
    elif "remove" in action:
        changed[unquote(action["remove"]["path"])] = None
    elif "metaData" in action or "protocol" in action:
        key = "metaData" if "metaData" in action else "protocol"
        state[key] = action[key]


def _value(values: Mapping, column: str, physical: Mapping[str, str]) -> Optional[str]:
    value = values.get(physical[column], values.get(column))
    return None if value is None else str(value)


def _flat(table: pa.Table) -> pa.Table:
    """Struct columns flattened (``add.deletionVector.cardinality``...), zero copy; a null parent nulls its
    children."""
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return table


def _checkpoint_columns(add: pa.Table, part_cols: tuple, physical: Mapping[str, str],
                        changed: Mapping[str, object]) -> pa.Table:
    """The FileTable columns of one checkpoint part's adds, less the paths the commits after it changed. Works on
    the flattened columns, so no struct or map is copied; rows that are not adds are dropped once, at the end."""
    names = set(add.column_names)
    raw = add.column("add.path")
    columns = {"path": raw, "size_bytes": pc.cast(add.column("add.size"), pa.int64())}
    records = _stats_records(add.column("add.stats")) if "add.stats" in names else None
    if "add.stats_parsed.numRecords" in names:
        parsed = pc.cast(add.column("add.stats_parsed.numRecords"), pa.int64())
        records = parsed if records is None else pc.coalesce(records, parsed)
    columns["num_records"] = pa.nulls(len(raw), pa.int64()) if records is None else records
    cardinality = add.column("add.deletionVector.cardinality") if "add.deletionVector.cardinality" in names else None
    columns["deleted_rows"] = (pa.nulls(len(raw), pa.int64()) if cardinality is None
                               else pc.fill_null(pc.cast(cardinality, pa.int64()), 0))
    for c in part_cols:
        columns[f"partition.{c}"] = _map_value(add.column("add.partitionValues"), (physical[c], c))
    table = pa.table(columns).filter(pc.is_valid(raw))
    table = table.set_column(0, "path", _decode(table.column("path")))
    if changed:
        table = table.filter(pc.invert(pc.is_in(table.column("path"),
                                                value_set=pa.array(list(changed), pa.string()))))
    return table


def _map_value(maps: pa.ChunkedArray, keys: tuple) -> pa.ChunkedArray:
    """Each map's value of the first of ``keys`` it holds (null when none), vectorised over the maps' entries:
    several times cheaper than ``pc.map_lookup`` on a 1,000,000-file checkpoint."""
    chunks = []
    for chunk in maps.chunks:
        offsets = chunk.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
        found = np.full(len(chunk), -1, dtype=np.int64)
        for key in reversed(dict.fromkeys(keys)):  # the first key wins: it is written last
            hit = np.flatnonzero(pc.fill_null(pc.equal(chunk.keys, key), False).to_numpy(zero_copy_only=False))
            hit = hit[(hit >= offsets[0]) & (hit < offsets[-1])]  # .keys/.items are not sliced with the chunk
            row = np.searchsorted(offsets, hit, side="right") - 1
            first = np.concatenate(([True], row[1:] != row[:-1])) if len(row) else np.zeros(0, bool)
            found[row[first]] = hit[first]
        take = pa.array(found, mask=found < 0)
        chunks.append(pc.cast(chunk.items.take(take), pa.string()))
    return pa.chunked_array(chunks, pa.string())


def _stats_records(stats) -> pa.Array:
    """``numRecords`` of each add's JSON stats (null without stats). Writers put it first (``{"numRecords":N,...``),
    which an anchored regex reads exactly; if any stats string starts otherwise, all are parsed as JSON."""
    stats = pc.cast(stats.combine_chunks() if isinstance(stats, pa.ChunkedArray) else stats, pa.string())
    leading = pc.struct_field(pc.extract_regex(stats, r'^\{\s*"numRecords"\s*:\s*(?P<n>\d{1,18})\s*[,}]'), "n")
    records = pc.cast(leading, pa.int64())
    if records.null_count == stats.null_count + int(pc.sum(pc.equal(stats, "")).as_py() or 0):
        return records
    return _json_records(stats)


def _json_records(stats: pa.Array) -> pa.Array:
    """``numRecords`` of each JSON stats string, parsed by Arrow's JSON reader in one pass."""
    import pyarrow.json as pj

    text = pc.if_else(pc.or_kleene(pc.is_null(stats), pc.equal(stats, "")), "{}", stats)
    lines = pc.binary_join_element_wise(text, "", "\n")  # each stats string + "\n": one JSON document a line
    offsets = np.frombuffer(lines.buffers()[1], np.int32)[lines.offset:lines.offset + len(lines) + 1]
    data = lines.buffers()[2][int(offsets[0]):int(offsets[-1])]
    parsed = pj.read_json(pa.BufferReader(data), parse_options=pj.ParseOptions(
        explicit_schema=pa.schema([("numRecords", pa.int64())]), unexpected_field_behavior="ignore"))
    if parsed.num_rows != len(stats):  # a stats string spanning lines: leave it to delta-rs
        raise _Unsure
    return parsed.column("numRecords").combine_chunks()
