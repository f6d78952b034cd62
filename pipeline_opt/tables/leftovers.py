"""Files a failed rewrite wrote but never committed: found so the error can name them.

Why: a rewrite (OPTIMIZE, REORG) that fails after writing some of its new files but before its commit leaves those
files in the table's folders. They are not part of the table (no commit names them) and VACUUM deletes them once
they are older than the retention, but a user who sees only "failed" cannot know that, nor what to look for.

Invariants: read-only; lists only the folders that hold the live files of the given partitions (never the whole
table), one listing each; a file counts when it is a Parquet file modified at or after ``since`` and not live in
the latest snapshot, so a concurrent writer's committed files are never named (an uncommitted one written in the
same seconds would be, which the message allows for).
"""
from __future__ import annotations

import posixpath
from typing import Mapping, Optional, Sequence

import pyarrow.fs as pafs

from pipeline_opt.delta import read_snapshot
from pipeline_opt.delta.fs import resolve

SLACK_S = 2.0  # storage clocks and modification times are coarse


def uncommitted_files(location: str, partitions: Sequence[Mapping[str, Optional[str]]], since: float,
                      storage_options: Optional[Mapping[str, str]] = None) -> list[str]:
    """Paths (relative to the table root) of Parquet files in the partitions' folders, modified at or after
    ``since`` (seconds since the epoch), that no live file of the latest version is."""
    snap = read_snapshot(location, storage_options=storage_options)
    paths = snap.paths
    wanted = {tuple(p.get(c) for c in snap.partition_columns) for p in partitions}
    folders = {posixpath.dirname(paths[i]) for key, idx in snap.groups.items() if key in wanted for i in idx}
    fs, root = resolve(location, storage_options)
    root = root.rstrip("/")
    live = set(paths)
    found = []
    for folder in sorted(folders or {""}):
        base = f"{root}/{folder}" if folder else root
        for info in fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
            if info.type != pafs.FileType.File or not info.base_name.endswith(".parquet"):
                continue
            rel = info.path[len(root) + 1:]
            if rel not in live and info.mtime is not None and info.mtime.timestamp() >= since - SLACK_S:
                found.append(rel)
    return sorted(found)
