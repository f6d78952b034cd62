"""Raw Delta log actions, as a writer needs them: one commit's actions, and the live add actions at a version.

Why beside ``delta.log``: that replay keeps only paths and deletion vectors (what health and the planner need); a
writer that re-adds a file must write its add action back whole (size, partition values, stats, tags, deletion
vector, modification time), so this replay keeps every field, restricted to the paths asked for.

Invariants: the replay starts at the newest complete checkpoint at or below the version (classic, multi-part or v2
with sidecars) and applies the JSON commits after it in order, removes before adds within a commit; actions come back
as the JSON objects of the log (maps as dicts, absent struct fields left out, partition values kept even when null);
paths are matched decoded (the log stores them URL-encoded; the raw action keeps its own spelling); only the
``_delta_log`` folder is listed or read.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping, Optional
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline_opt.delta.log import commit_actions, complete_checkpoints, json_lines
from pipeline_opt.errors import DeltaLogError

_COMMIT = re.compile(r"^(\d{20})\.json$")
_STATE = ("add", "remove", "protocol", "metaData")


def latest_version(fs: pafs.FileSystem, log_dir: str) -> int:
    """The newest version with a JSON commit in the log (one listing of ``_delta_log``)."""
    versions = [int(m.group(1)) for info in fs.get_file_info(pafs.FileSelector(log_dir))
                if (m := _COMMIT.match(info.base_name))]
    if not versions:
        raise DeltaLogError(f"{log_dir}: no commits in the log")
    return max(versions)


def live_adds(fs: pafs.FileSystem, log_dir: str, version: int,
              paths: Optional[Iterable[str]] = None) -> dict[str, dict]:
    """Decoded path → the raw add action live at ``version`` (only for ``paths``, decoded, when given)."""
    return replay(fs, log_dir, version, paths)[0]


def table_state(fs: pafs.FileSystem, log_dir: str, version: int) -> tuple[dict, dict]:
    """(protocol, metaData) actions in force at ``version``."""
    _, protocol, metadata = replay(fs, log_dir, version, ())
    if not protocol or not metadata:
        raise DeltaLogError(f"{log_dir}: no protocol or metaData action at or below version {version}")
    return protocol, metadata


def replay(fs: pafs.FileSystem, log_dir: str, version: int,
           paths: Optional[Iterable[str]] = None) -> tuple[dict[str, dict], dict, dict]:
    """(live adds for ``paths`` or all when None, protocol, metaData) at ``version``."""
    wanted = None if paths is None else {unquote(p) for p in paths}
    checkpoints = complete_checkpoints(fs, log_dir, version)
    start = max(checkpoints, default=-1)
    state: dict = {"live": {}, "protocol": {}, "metaData": {}}
    for name in sorted(checkpoints.get(start, [])):
        _read_checkpoint(fs, f"{log_dir}/{name}", log_dir, state, wanted)
    for v in range(start + 1, int(version) + 1):
        for action in sorted(commit_actions(fs, log_dir, v), key=lambda a: "add" in a):
            _apply(action, state, wanted)
    return state["live"], state["protocol"], state["metaData"]


def _apply(action: Mapping, state: dict, wanted: Optional[set]) -> None:
    if "add" in action and action["add"]:
        path = unquote(action["add"]["path"])
        if wanted is None or path in wanted:
            state["live"][path] = dict(action["add"])
    elif "remove" in action and action["remove"]:
        state["live"].pop(unquote(action["remove"]["path"]), None)
    elif "protocol" in action and action["protocol"]:
        state["protocol"] = dict(action["protocol"])
    elif "metaData" in action and action["metaData"]:
        state["metaData"] = dict(action["metaData"])


def _read_checkpoint(fs: pafs.FileSystem, path: str, log_dir: str, state: dict, wanted: Optional[set]) -> None:
    if path.endswith(".json"):  # a v2 checkpoint's top-level file may be JSON lines of actions
        for action in json_lines(fs, path):
            if "sidecar" in action:
                _read_checkpoint(fs, f"{log_dir}/_sidecars/{unquote(action['sidecar']['path'])}", log_dir, state,
                                 wanted)
            else:
                _apply(action, state, wanted)
        return
    with fs.open_input_file(path) as fh:
        pf = pq.ParquetFile(fh)
        names = pf.schema_arrow.names
        columns = [c for c in (*_STATE, "sidecar") if c in names and not (c == "add" and wanted == set())]
        table = pf.read(columns=columns) if columns else None
    if table is None:
        return
    for column in columns:
        if column == "sidecar":
            continue
        values = table.column(column).combine_chunks()
        for row in values.filter(values.is_valid()).to_pylist() if len(values) else []:
            if column == "add" and wanted is not None and unquote(row["path"]) not in wanted:
                continue
            _apply({column: _plain(row, values.type)}, state, wanted)
    if "sidecar" in columns:  # v2 checkpoints keep their add actions in sidecar files
        for side in table.column("sidecar").to_pylist():
            if side is not None:
                _read_checkpoint(fs, f"{log_dir}/_sidecars/{unquote(side['path'])}", log_dir, state, wanted)


def _plain(value, arrow_type: pa.DataType):
    """A checkpoint value as the JSON log writes it: maps as dicts, null struct fields left out (a null partition
    value stays: it means the null partition)."""
    if value is None:
        return None
    if pa.types.is_struct(arrow_type):
        out = {}
        for f in arrow_type:
            if f.name.endswith("_parsed"):  # stats_parsed / partitionValues_parsed: typed copies of the JSON fields
                continue
            v = _plain(value.get(f.name), f.type)
            if v is not None:
                out[f.name] = v
        return out
    if pa.types.is_map(arrow_type):
        items = value.items() if isinstance(value, dict) else value
        return {k: _plain(v, arrow_type.item_type) for k, v in items}
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return [_plain(v, arrow_type.value_type) for v in value]
    return value
