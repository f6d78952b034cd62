"""Deletion-vector descriptors of the live files at one version, replayed from the Delta log.

Why our own replay: delta-rs gives the snapshot's add actions without their ``deletionVector`` field, and its
``deletion_vectors()`` decodes every mask of the table up front (it did not return within minutes on a table of
1,240 vectors). Health and the compaction planner need only each descriptor's ``cardinality``; the loader decodes a
mask only when a worker opens that file.

Invariants: the replay starts at the newest complete checkpoint at or below the version (classic, multi-part, or v2
with its sidecars) and applies the JSON commits after it in order; within one commit removes apply before adds (a
DELETE with deletion vectors removes and re-adds the same path); only the ``_delta_log`` folder is listed, never a
data folder; local and remote tables take the same path through a pyarrow filesystem.
"""
from __future__ import annotations

import json
import re
from typing import Mapping, Optional
from urllib.parse import unquote

import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline_opt.errors import DeltaLogError

# classic (N.checkpoint.parquet), multi-part (N.checkpoint.PART.PARTS.parquet), v2 (N.checkpoint.UUID.json|parquet)
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint"
                         r"(?:\.(\d{10})\.(\d{10})\.parquet|\.[0-9a-f-]{36}\.(?:json|parquet)|\.parquet)$")


def deletion_vectors(fs: pafs.FileSystem, log_dir: str, version: int) -> dict[str, dict]:
    """Decoded relative data path → deletion-vector descriptor, for files live at ``version`` that have one."""
    checkpoints = _checkpoints(fs, log_dir, version)
    start = max(checkpoints, default=-1)
    live: dict[str, object] = {}
    for name in sorted(checkpoints.get(start, [])):
        _read_checkpoint(fs, f"{log_dir}/{name}", log_dir, live)
    for v in range(start + 1, version + 1):
        for action in sorted(_commit(fs, log_dir, v), key=lambda a: "add" in a):
            _apply(action, live)
    return {p: dv for p, dv in live.items() if isinstance(dv, dict)}


def _checkpoints(fs: pafs.FileSystem, log_dir: str, version: int) -> dict[int, list[str]]:
    """One complete checkpoint per version at or below ``version``: version → the files of that checkpoint."""
    instances: dict[tuple, list[str]] = {}  # (version, kind) → files; a multi-part checkpoint's kind is its part count
    for info in fs.get_file_info(pafs.FileSelector(log_dir)):
        m = _CHECKPOINT.match(info.base_name)
        if m and int(m.group(1)) <= version and info.size != 0:  # Delta ignores empty checkpoint files too
            kind = m.group(3) or info.base_name[21:]  # part count, or the file's own name (single or v2)
            instances.setdefault((int(m.group(1)), kind), []).append(info.base_name)
    complete: dict[int, list[str]] = {}
    for (v, kind), files in sorted(instances.items()):
        if not kind.isdigit() or len(files) == int(kind):
            complete[v] = files
    return complete


def commit_timestamp_ms(fs: pafs.FileSystem, log_dir: str, version: int) -> Optional[int]:
    """The commit time of ``version`` in ms (in-commit timestamp, else commitInfo's), None when it carries none."""
    return commit_timestamp_of(_commit(fs, log_dir, version))


def _commit(fs: pafs.FileSystem, log_dir: str, version: int) -> list[dict]:
    path = f"{log_dir}/{version:020d}.json"
    try:
        return json_lines(fs, path)
    except FileNotFoundError:
        raise DeltaLogError(f"{path}: commit {version} is missing from the log") from None


def json_lines(fs: pafs.FileSystem, path: str) -> list[dict]:
    """The actions of one JSON-lines log file (a commit or a v2 checkpoint); ``DeltaLogError`` when not JSON."""
    with fs.open_input_stream(path) as fh:
        text = fh.read()
    try:
        return [json.loads(line) for line in text.decode().splitlines() if line.strip()]
    except (UnicodeDecodeError, ValueError) as e:
        raise DeltaLogError(f"{path}: not JSON lines of Delta actions ({e})") from None


def _apply(action: Mapping, live: dict) -> None:
    if "add" in action:
        add = action["add"]
        live[unquote(add["path"])] = add.get("deletionVector")
    elif "remove" in action:
        live.pop(unquote(action["remove"]["path"]), None)


def _read_checkpoint(fs: pafs.FileSystem, path: str, log_dir: str, live: dict) -> None:
    """Adds of one checkpoint part (or v2 sidecar): only paths and deletion vectors are decoded."""
    if path.endswith(".json"):  # a v2 checkpoint's top-level file may be JSON lines of actions
        for action in json_lines(fs, path):
            if "sidecar" in action:
                _read_checkpoint(fs, f"{log_dir}/_sidecars/{unquote(action['sidecar']['path'])}", log_dir, live)
            else:
                _apply(action, live)
        return
    with fs.open_input_file(path) as fh:
        pf = pq.ParquetFile(fh)
        adds = pf.schema_arrow.field("add").type if "add" in pf.schema_arrow.names else None
        wanted = [f"add.{f}" for f in ("path", "deletionVector") if adds is not None and adds.get_field_index(f) >= 0]
        sidecars = ["sidecar.path"] if "sidecar" in pf.schema_arrow.names else []
        table = pf.read(columns=wanted + sidecars) if wanted or sidecars else None
    if table is None:
        return
    if wanted:
        add = table.column("add").combine_chunks()
        present = pc.is_valid(add)
        paths = pc.filter(add.field("path"), present).to_pylist()
        if add.type.get_field_index("deletionVector") >= 0:
            vectors = pc.filter(add.field("deletionVector"), present).to_pylist()
        else:
            vectors = [None] * len(paths)
        live.update((unquote(p), dv) for p, dv in zip(paths, vectors))
    if sidecars:  # v2 checkpoints keep their add actions in sidecar files
        for side in table.column("sidecar").to_pylist():
            if side is not None:
                _read_checkpoint(fs, f"{log_dir}/_sidecars/{unquote(side['path'])}", log_dir, live)


def describe_damage(fs: pafs.FileSystem, log_dir: str) -> Optional[str]:
    """What is wrong with a log a reader refused, in the words a user can act on; None when nothing is found.

    Looks for the three kinds of damage seen in practice: ``_last_checkpoint`` naming a checkpoint that is not there
    (with the JSON commits a replay without it would need), a gap in the commit sequence, and a newest commit cut
    mid-line (a writer killed during a non-atomic put). Lists the log folder once; reads only small files.
    """
    names = [info.base_name for info in fs.get_file_info(pafs.FileSelector(log_dir))]
    commits = sorted(int(n[:20]) for n in names if re.fullmatch(r"\d{20}\.json", n))
    checkpoints = _checkpoints(fs, log_dir, 2**63 - 1)
    hinted = _hinted_checkpoint(fs, log_dir)
    if hinted is not None and hinted not in checkpoints:
        wanted = set(range(hinted + 1))
        missing = _ranges(sorted(wanted - set(commits)))
        return (f"checkpoint {hinted} named by _last_checkpoint is missing; log replay from JSON would need commits "
                f"0–{hinted} ({'missing: ' + missing if missing else 'all present'})")
    if commits:
        with fs.open_input_stream(f"{log_dir}/{commits[-1]:020d}.json") as fh:
            lines = fh.read().decode("utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            try:
                json.loads(line) if line.strip() else None
            except ValueError:
                return f"commit {commits[-1]} is truncated or corrupt (line {number} is not JSON)"
    start = max((v for v in checkpoints if v <= (commits[-1] if commits else -1)), default=0)
    gaps = sorted(set(range(start, commits[-1] + 1)) - set(commits)) if commits else []
    if gaps:
        return (f"commit {gaps[0]} is missing" if len(gaps) == 1 else f"commits {_ranges(gaps)} are missing") + \
            f" from the log, which holds commits up to {commits[-1]}"
    return None


def _hinted_checkpoint(fs: pafs.FileSystem, log_dir: str) -> Optional[int]:
    try:
        with fs.open_input_stream(f"{log_dir}/_last_checkpoint") as fh:
            hint = json.loads(fh.read().decode())
    except (FileNotFoundError, UnicodeDecodeError, ValueError):
        return None
    version = hint.get("version") if isinstance(hint, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) and version >= 0 else None


def _ranges(versions: list[int]) -> str:
    """``[1, 2, 3, 7]`` → ``"1–3, 7"``."""
    spans: list[list[int]] = []
    for v in versions:
        if spans and v == spans[-1][1] + 1:
            spans[-1][1] = v
        else:
            spans.append([v, v])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in spans)


# Public pieces of the replay for readers that need more than the live deletion vectors (``tables.vacuum_log``).

def complete_checkpoints(fs: pafs.FileSystem, log_dir: str, version: int = 2**63 - 1) -> dict[int, list[str]]:
    """Version → the file names of one complete checkpoint, for every checkpoint at or below ``version``."""
    return _checkpoints(fs, log_dir, version)


def commit_timestamp_of(actions: list[dict]) -> Optional[int]:
    """``commit_timestamp_ms`` of commit actions already read: in-commit timestamp, else commitInfo's, else None."""
    for action in actions:
        info = action.get("commitInfo") if isinstance(action, dict) else None
        stamp = info.get("inCommitTimestamp", info.get("timestamp")) if isinstance(info, dict) else None
        if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) and stamp > 0:
            return int(stamp)
    return None


def commit_actions(fs: pafs.FileSystem, log_dir: str, version: int) -> list[dict]:
    """The actions of commit ``version`` (JSON objects, in file order); ``DeltaLogError`` when it is missing."""
    return _commit(fs, log_dir, version)


def checkpoint_live_files(fs: pafs.FileSystem, log_dir: str, names: list[str]) -> dict[str, Optional[dict]]:
    """Decoded relative path → deletion-vector descriptor (None without one) of every add of one checkpoint."""
    live: dict = {}
    for name in sorted(names):
        _read_checkpoint(fs, f"{log_dir}/{name}", log_dir, live)
    return live


def checkpoint_tombstones(fs: pafs.FileSystem, log_dir: str, names: list[str]) -> list[dict]:
    """The ``remove`` actions (tombstones) of one checkpoint, v2 sidecars included: dicts with ``path`` (as the log
    spells it), ``deletionTimestamp``, ``size`` and ``deletionVector`` where the checkpoint has them."""
    out: list[dict] = []
    for name in sorted(names):
        _read_tombstones(fs, f"{log_dir}/{name}", log_dir, out)
    return out


def checkpoint_configuration(fs: pafs.FileSystem, log_dir: str, names: list[str]) -> Optional[dict]:
    """The table configuration (``metaData.configuration``) a checkpoint holds; None when it has no metaData."""
    for name in sorted(names):
        path = f"{log_dir}/{name}"
        if path.endswith(".json"):
            for action in json_lines(fs, path):
                if isinstance(action.get("metaData"), dict):
                    return dict(action["metaData"].get("configuration") or {})
            continue
        with fs.open_input_file(path) as fh:
            pf = pq.ParquetFile(fh)
            meta = pf.schema_arrow.field("metaData").type if "metaData" in pf.schema_arrow.names else None
            if meta is None or meta.get_field_index("configuration") < 0:
                continue
            column = pf.read(columns=["metaData.configuration"]).column("metaData").combine_chunks()
        for row in column.to_pylist():
            if row is not None:
                conf = row.get("configuration") or {}
                return dict(conf) if isinstance(conf, dict) else {k: v for k, v in conf}
    return None


def _read_tombstones(fs: pafs.FileSystem, path: str, log_dir: str, out: list[dict]) -> None:
    if path.endswith(".json"):
        for action in json_lines(fs, path):
            if "sidecar" in action:
                _read_tombstones(fs, f"{log_dir}/_sidecars/{unquote(action['sidecar']['path'])}", log_dir, out)
            elif isinstance(action.get("remove"), dict):
                out.append(action["remove"])
        return
    with fs.open_input_file(path) as fh:
        pf = pq.ParquetFile(fh)
        names = pf.schema_arrow.names
        removes = pf.schema_arrow.field("remove").type if "remove" in names else None
        wanted = [f"remove.{f}" for f in ("path", "deletionTimestamp", "size", "deletionVector")
                  if removes is not None and removes.get_field_index(f) >= 0]
        sidecars = ["sidecar.path"] if "sidecar" in names else []
        table = pf.read(columns=wanted + sidecars) if wanted or sidecars else None
    if table is None:
        return
    if wanted:
        column = table.column("remove").combine_chunks()
        out.extend(r for r in pc.filter(column, pc.is_valid(column)).to_pylist() if r.get("path"))
    if sidecars:
        for side in table.column("sidecar").to_pylist():
            if side is not None:
                _read_tombstones(fs, f"{log_dir}/_sidecars/{unquote(side['path'])}", log_dir, out)
