"""Reading a table whose ``_last_checkpoint`` names a checkpoint that is gone, as Spark's reader does.

Spark treats ``_last_checkpoint`` as a hint: when the checkpoint it names is missing, it lists the log and replays
from the newest complete checkpoint below it (or from commit 0) as long as every commit after that is present.
delta-rs trusts the hint and refuses the table. To read what Spark reads, delta-rs is pointed at a private copy
of the log without the hint: the commits and the one checkpoint the replay needs, linked (local) or copied
(object stores) into a temporary folder that lives as long as the ``DeltaTable`` opened on it.

Invariants: the table itself is never written; nothing is read when any commit the replay needs is missing (the
caller then names the damage); data file paths are resolved by the caller against the real table, never the copy.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Mapping, Optional

import pyarrow.fs as pafs

from pipeline_opt.delta.fs import resolve
from pipeline_opt.delta.log import _hinted_checkpoint, complete_checkpoints
from pipeline_opt.delta.paths import is_remote

_COMMIT = re.compile(r"^(\d{20})\.json$")
# Real table URI of every DeltaTable opened on a copy of its log, by id (a DeltaTable is not hashable), for
# readers that resolve data files; an entry goes with its table.
_REAL_URI: dict[int, str] = {}


def replay_plan(fs: pafs.FileSystem, log_dir: str) -> Optional[tuple[int, list[str]]]:
    """(version the hint named, log file names a replay without the hint needs), or None when the hint is fine
    or the replay is impossible (a commit after the newest complete checkpoint below the hint is missing)."""
    hinted = _hinted_checkpoint(fs, log_dir)
    checkpoints = complete_checkpoints(fs, log_dir)
    if hinted is None or hinted in checkpoints:
        return None
    names = [i.base_name for i in fs.get_file_info(pafs.FileSelector(log_dir))]
    commits = {int(m.group(1)): n for n in names if (m := _COMMIT.match(n))}
    if not commits:
        return None
    start = max((v for v in checkpoints if v < hinted), default=-1)
    needed = range(start + 1, max(commits) + 1)
    if any(v not in commits for v in needed):
        return None
    return hinted, [*checkpoints.get(start, []), *(commits[v] for v in needed)]


def open_without_hint(uri: str, version: Optional[int], storage_options: Optional[Mapping[str, str]]):
    """A ``DeltaTable`` read from a copy of ``uri``'s log without ``_last_checkpoint``, and the hinted version,
    or None when ``replay_plan`` finds no safe replay."""
    from deltalake import DeltaTable

    fs, root = resolve(uri, storage_options)
    log_dir = root.rstrip("/") + "/_delta_log"
    plan = replay_plan(fs, log_dir)
    if plan is None:
        return None
    hinted, names = plan
    copy = tempfile.mkdtemp(prefix="pipeline-opt-log-")
    try:
        os.mkdir(os.path.join(copy, "_delta_log"))
        for name in names:
            _place(fs, f"{log_dir}/{name}", os.path.join(copy, "_delta_log", name))
        sidecars = fs.get_file_info(pafs.FileSelector(f"{log_dir}/_sidecars", allow_not_found=True))
        if sidecars:  # a v2 checkpoint keeps its add actions there
            os.mkdir(os.path.join(copy, "_delta_log", "_sidecars"))
            for info in sidecars:
                _place(fs, info.path, os.path.join(copy, "_delta_log", "_sidecars", info.base_name))
        table = DeltaTable(copy, version=version)
    except BaseException:
        shutil.rmtree(copy, ignore_errors=True)
        raise
    _REAL_URI[id(table)] = (uri if is_remote(uri) else Path(uri).resolve().as_uri()).rstrip("/") + "/"
    weakref.finalize(table, _forget, id(table), copy)
    return table, hinted


def real_uri(table) -> str:
    """The URI of the table ``table`` was opened for (its own ``table_uri`` unless read from a log copy)."""
    return _REAL_URI.get(id(table), table.table_uri)


def _forget(key: int, copy: str) -> None:
    _REAL_URI.pop(key, None)
    shutil.rmtree(copy, ignore_errors=True)


def _place(fs: pafs.FileSystem, source: str, dest: str) -> None:
    if isinstance(fs, pafs.LocalFileSystem):
        try:
            os.link(source, dest)  # same device: no bytes copied
            return
        except OSError:
            pass
    with fs.open_input_stream(source) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
