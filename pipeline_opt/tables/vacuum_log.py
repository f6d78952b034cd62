"""VACUUM computed from the Delta log alone (what Delta's ``VACUUM … LITE`` does), without listing storage.

Why: Delta's own VACUUM (``tables.vacuum``) lists every file under the table folder and anti-joins the listing with
the snapshot; on object storage a table of millions of files takes hours just to list. The files VACUUM may delete
are, apart from orphans, exactly the files the log says were removed, so this mode reads only ``_delta_log`` (one
listing of that folder, its JSON commits and checkpoints) and touches a data file only to delete it (or, in a dry
run, to check it still exists).

What is deleted: a data file or deletion-vector file (``deletion_vector_<uuid>.bin``, or a path vector) named by a
``remove`` action — of a JSON commit, or a checkpoint's tombstone — whose ``deletionTimestamp`` (the removing
commit's time when it has none) is older than the horizon ``now - retention``, unless some version inside the
retention still references it: the snapshot at the oldest version whose commit time is at or after the horizon,
every file (and vector) added after it, which includes the current snapshot, and every tombstone not yet expired.
A DELETE with deletion vectors removes and re-adds the same path: the path stays, its old vector goes.

Invariants (the same safety rules as ``tables.vacuum``): retention below ``SAFE_RETENTION_HOURS`` is refused unless
``allow_unsafe`` (``check_retention``), and so is one below the table's ``delta.deletedFileRetentionDuration`` unless
the 7-day check was relaxed that way; readers' leases (``delta.leases``) stretch the retention exactly as there; a
dry run deletes nothing; deletion goes through the table's pyarrow filesystem and deletes only the computed files,
never anything under ``_delta_log`` and never a path outside the table root (absolute paths elsewhere — a shallow
clone's files — are refused and reported); a file already gone counts as already gone, not as an error (a dry run
checks each file it would delete; on object stores, where deleting a missing key succeeds, an executing run counts
such a file as deleted).

How it differs from the listing VACUUM: files that no commit ever mentions — orphans of failed jobs, or a concurrent
writer's files not yet committed — are never seen and never deleted (no data folder is listed). When log cleanup has
removed the commits before some version, the files removed by those commits are known only as far as the oldest
checkpoint still keeps their tombstones: the result says so (``unknown_before_version``) instead of guessing; a
listing VACUUM finds them. Files of change data feed (``cdc`` actions) are not deleted by this mode. Delta's VACUUM
records ``VACUUM START`` / ``VACUUM END`` commits in the table's history; this mode writes nothing to the log.
"""
from __future__ import annotations

import posixpath
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Mapping, Optional
from urllib.parse import unquote

import pyarrow.fs as pafs

from pipeline_opt.delta import TableLike, TableRef, check_table_path
from pipeline_opt.delta.deletion_vectors import dv_file_path
from pipeline_opt.delta.fs import resolve, split_uri
from pipeline_opt.delta.leases import active_leases, retention_for
from pipeline_opt.delta.log import (
    checkpoint_configuration,
    checkpoint_live_files,
    checkpoint_tombstones,
    commit_actions,
    commit_timestamp_of,
    complete_checkpoints,
    describe_damage,
)
from pipeline_opt.errors import DeltaLogError, NotADeltaTableError
from pipeline_opt.tables.vacuum import (
    SAFE_RETENTION_HOURS,
    SAMPLE_FILES,
    UnsafeRetentionError,
    VacuumResult,
    check_retention,
)

HOUR_MS = 3600 * 1000
WORKERS = 16  # parallel reads of commits, stats and deletes (object stores answer each request in milliseconds)
_COMMIT = re.compile(r"^(\d{20})\.json$")
_INTERVAL = re.compile(r"(\d+)\s*(week|day|hour|minute|min|second|sec|millisecond|ms|microsecond)s?", re.I)
_UNIT_HOURS = {"week": 168.0, "day": 24.0, "hour": 1.0, "minute": 1 / 60, "min": 1 / 60, "second": 1 / 3600,
               "sec": 1 / 3600, "millisecond": 1 / 3.6e6, "ms": 1 / 3.6e6, "microsecond": 1 / 3.6e9}


@dataclass
class LogVacuumResult(VacuumResult):
    """A ``VacuumResult`` of the log-based VACUUM, with what only this mode knows."""

    mode: str = "log"
    already_gone: int = 0  # removed files the log names that were no longer there (an earlier VACUUM)
    unknown_before_version: Optional[int] = None  # removes before this version may be missing from the log
    outside_table: list[str] = field(default_factory=list)  # removed paths outside the table root, never deleted
    oldest_retained_version: Optional[int] = None
    latest_version: Optional[int] = None

    def render(self) -> str:
        lines = [super().render().replace("VACUUM RETAIN", "VACUUM (from the log) RETAIN", 1)]
        if self.already_gone:
            lines.append(f"  {self.already_gone:,} removed files the log names were already gone")
        if self.outside_table:
            lines.append(f"  {len(self.outside_table):,} removed files lie outside the table folder and were "
                         f"left alone, e.g. {self.outside_table[0]}")
        if self.unknown_before_version is not None:
            lines.append(f"  the log starts at version {self.unknown_before_version} (log cleanup): files removed "
                         "before it are known only from the checkpoint's tombstones; a listing VACUUM finds the rest")
        lines.append("  files no commit mentions (orphans, uncommitted writes) are not looked for in this mode")
        return "\n".join(lines)


@dataclass
class LogVacuumPlan:
    """What the log says may go, relative to the table root: ``files`` maps each path to its size (None: unknown)."""

    horizon_ms: int
    latest_version: int
    oldest_retained_version: int
    unknown_before_version: Optional[int]
    files: dict[str, Optional[int]]
    outside_table: list[str]
    table_retention_hours: Optional[float]


def vacuum_from_log(path: TableLike, retention_hours: float = SAFE_RETENTION_HOURS, dry_run: bool = True,
                    allow_unsafe: bool = False, storage_options: Optional[Mapping[str, str]] = None,
                    now_ms: Optional[int] = None) -> LogVacuumResult:
    """VACUUM the table at ``path`` from its log (a dry run unless ``dry_run=False``); ``now_ms``: the time the
    horizon is measured from (default: now)."""
    check_retention(retention_hours, allow_unsafe)
    ref = path if isinstance(path, TableRef) else TableRef(check_table_path(path))
    now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    requested = float(retention_hours)
    held = active_leases(ref.location, storage_options)
    retention_hours = float(retention_for(requested, held, now=now_ms / 1000))
    relax = retention_hours < SAFE_RETENTION_HOURS  # only reachable with allow_unsafe
    fs, root = resolve(ref.location, storage_options)
    root = root.rstrip("/")
    plan = plan_from_log(fs, root, now_ms - int(retention_hours * HOUR_MS))
    if plan.table_retention_hours is not None and retention_hours < plan.table_retention_hours and not relax:
        raise UnsafeRetentionError(f"{ref.label}: retention {retention_hours:g} hours is below the table's "
                                   f"delta.deletedFileRetentionDuration ({plan.table_retention_hours:g} hours)")
    if dry_run:
        sizes = _stat(fs, root, plan.files)
        done = sorted(rel for rel, size in sizes.items() if size is not None)
    else:
        sizes = _delete(fs, root, plan.files)
        done = sorted(rel for rel, size in sizes.items() if size is not None)
    freed = [size for size in (sizes[rel] for rel in done) if size is not None]
    location = ref.location.rstrip("/")
    return LogVacuumResult(
        ref.label, retention_hours, dry_run, len(done), None if any(s < 0 for s in freed) else sum(freed),
        [f"{location}/{rel}" for rel in done[:SAMPLE_FILES]], relax, requested,
        [f"{lease.holder} holds version {lease.version}" for lease in held],
        already_gone=len(plan.files) - len(done), unknown_before_version=plan.unknown_before_version,
        outside_table=plan.outside_table[:SAMPLE_FILES], oldest_retained_version=plan.oldest_retained_version,
        latest_version=plan.latest_version)


def plan_from_log(fs: pafs.FileSystem, root: str, horizon_ms: int) -> LogVacuumPlan:
    """The files the log of the table at ``root`` (a path inside ``fs``) says may be deleted at ``horizon_ms``."""
    log_dir = f"{root}/_delta_log"
    try:
        infos = fs.get_file_info(pafs.FileSelector(log_dir))
    except FileNotFoundError:
        raise NotADeltaTableError(f"{root}: not a Delta table (no _delta_log folder)") from None
    mtimes = {int(m.group(1)): info.mtime for info in infos if (m := _COMMIT.match(info.base_name))}
    checkpoints = complete_checkpoints(fs, log_dir)
    if not mtimes and not checkpoints:
        raise NotADeltaTableError(f"{root}: not a Delta table (no commits in _delta_log)")
    latest = max([*mtimes, *checkpoints])
    tail = latest + 1  # the first version of the unbroken run of JSON commits that ends at the latest
    while tail - 1 in mtimes:
        tail -= 1
    commits = _read_commits(fs, log_dir, sorted(mtimes))
    stamps = {v: _stamp(actions, mtimes[v]) for v, actions in commits.items()}

    # the oldest version a reader may still time-travel to: the first whose commit is at or after the horizon
    replayable = [c for c in checkpoints if c >= tail - 1] + ([0] if tail == 0 else [])
    if not replayable:
        damage = describe_damage(fs, log_dir)
        raise DeltaLogError(f"{log_dir}: no checkpoint from which commits {tail}–{latest} can be replayed"
                            + (f" ({damage})" if damage else ""))
    inside = [v for v in range(tail, latest + 1) if v in stamps and stamps[v] >= horizon_ms]
    retained = max(min(inside, default=latest), min(replayable))
    base = max((c for c in checkpoints if tail - 1 <= c <= retained), default=-1)
    if base < 0 and tail > 0:
        raise DeltaLogError(f"{log_dir}: version {retained} cannot be rebuilt: commits before {tail} are gone and "
                            "no checkpoint lies between")

    live = checkpoint_live_files(fs, log_dir, checkpoints[base]) if base >= 0 else {}
    for v in range(base + 1, retained + 1):
        for action in sorted(commits[v], key=lambda a: "add" in a):  # removes before adds, as Delta applies them
            if "add" in action:
                live[unquote(action["add"]["path"])] = action["add"].get("deletionVector")
            elif "remove" in action:
                live.pop(unquote(action["remove"]["path"]), None)
    keep: set[str] = set()
    outside: list[str] = []
    for p, dv in live.items():
        _reference(keep, p, dv, root)
    for v in range(retained + 1, latest + 1):
        for action in commits[v]:
            if "add" in action:
                _reference(keep, unquote(action["add"]["path"]), action["add"].get("deletionVector"), root)

    removes: list[tuple[dict, Optional[int]]] = [(r["remove"], stamps[v]) for v, actions in commits.items()
                                                  for r in actions if "remove" in r]
    oldest_checkpoint = min((c for c in checkpoints if c >= tail - 1), default=None)
    if tail > 0 and oldest_checkpoint is not None:  # commits before the tail are gone: their removes are tombstones
        removes += [(r, None) for r in checkpoint_tombstones(fs, log_dir, checkpoints[oldest_checkpoint])]
    expired = []
    for remove, commit_ms in removes:
        stamp = remove.get("deletionTimestamp")
        stamp = int(stamp) if isinstance(stamp, (int, float)) and stamp > 0 else commit_ms
        if stamp is None or stamp >= horizon_ms:  # still a tombstone inside the retention: its files stay
            _reference(keep, unquote(remove["path"]), remove.get("deletionVector"), root)
        else:
            expired.append(remove)
    files: dict[str, Optional[int]] = {}
    for remove in expired:
        size = remove.get("size")
        candidates = [(unquote(remove["path"]), int(size) if isinstance(size, (int, float)) and size >= 0 else None)]
        vector = _vector_path(remove.get("deletionVector"))
        if vector is not None:
            candidates.append((vector, None))
        for raw, known in candidates:
            rel = _relative(raw, root)
            if rel is None:
                if raw not in outside:
                    outside.append(raw)
            elif rel not in keep:
                files[rel] = known if known is not None else files.get(rel)
    return LogVacuumPlan(horizon_ms, latest, retained, tail if tail > 0 else None, files, sorted(outside),
                         _table_retention_hours(fs, log_dir, commits, checkpoints, latest))


def _read_commits(fs: pafs.FileSystem, log_dir: str, versions: list[int]) -> dict[int, list[dict]]:
    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip(versions, pool.map(lambda v: commit_actions(fs, log_dir, v), versions)))


def _stamp(actions: list[dict], mtime) -> int:
    """A commit's time in ms: in-commit timestamp or commitInfo's, else the commit file's modification time."""
    stamp = commit_timestamp_of(actions)
    if stamp is None and mtime is not None:
        stamp = int(mtime.timestamp() * 1000)
    return stamp if stamp is not None else 2**62  # unknown: treated as inside the retention, so its files stay


def _vector_path(descriptor) -> Optional[str]:
    """The file of a deletion vector stored beside the table (``u``) or at a path (``p``); None for inline ones."""
    if not isinstance(descriptor, dict) or descriptor.get("storageType") not in ("u", "p"):
        return None
    where = dv_file_path("", descriptor)
    return where.lstrip("/") if descriptor["storageType"] == "u" else where


def _reference(keep: set[str], path: str, descriptor, root: str) -> None:
    for p in (path, _vector_path(descriptor)):
        rel = _relative(p, root) if p is not None else None
        if rel is not None:
            keep.add(rel)


def _relative(path: str, root: str) -> Optional[str]:
    """``path`` (decoded, as the log names it) relative to the table root; None when it is outside the table (an
    absolute path elsewhere, ``..`` escaping the root) or inside ``_delta_log``, which this mode never deletes."""
    if "://" in path or path.startswith(("/", "file:")):
        inner = split_uri(path)[1]
        if not inner.startswith(root + "/"):
            return None
        path = inner[len(root) + 1:]
    rel = posixpath.normpath(path)
    if rel in (".", "..") or rel.startswith(("../", "/")) or rel.split("/", 1)[0] == "_delta_log":
        return None
    return rel


def _table_retention_hours(fs, log_dir: str, commits: dict[int, list[dict]], checkpoints: dict[int, list[str]],
                           latest: int) -> Optional[float]:
    """The table's ``delta.deletedFileRetentionDuration`` in hours; None when it sets none."""
    conf = None
    for v in sorted(commits, reverse=True):
        meta = next((a["metaData"] for a in commits[v] if isinstance(a.get("metaData"), dict)), None)
        if meta is not None:
            conf = meta.get("configuration") or {}
            break
    if conf is None:
        newest = max((c for c in checkpoints if c <= latest), default=None)
        conf = checkpoint_configuration(fs, log_dir, checkpoints[newest]) if newest is not None else None
    text = (conf or {}).get("delta.deletedFileRetentionDuration")
    if not text:
        return None
    parts = _INTERVAL.findall(str(text))
    if not parts or _INTERVAL.sub("", str(text)).replace("interval", "").strip():
        raise DeltaLogError(f"{log_dir}: delta.deletedFileRetentionDuration {text!r} is not an interval")
    return sum(int(n) * _UNIT_HOURS[unit.lower()] for n, unit in parts)


def _stat(fs: pafs.FileSystem, root: str, files: Mapping[str, Optional[int]]) -> dict[str, Optional[int]]:
    """Each file's size (from the log when it has it, else from storage); None for a file already gone."""
    names = sorted(files)
    chunks = [names[i:i + 1000] for i in range(0, len(names), 1000)]
    with ThreadPoolExecutor(WORKERS) as pool:
        infos = [i for chunk in pool.map(lambda c: fs.get_file_info([f"{root}/{n}" for n in c]), chunks) for i in chunk]
    return {n: (None if info.type == pafs.FileType.NotFound else
                files[n] if files[n] is not None else (info.size if info.size is not None else -1))
            for n, info in zip(names, infos)}


def _delete(fs: pafs.FileSystem, root: str, files: Mapping[str, Optional[int]]) -> dict[str, Optional[int]]:
    """Delete each file; its size (−1 when unknown) when deleted, None when it was already gone."""
    unknown = {n: None for n, size in files.items() if size is None}
    sizes = {**files, **_stat(fs, root, unknown)} if unknown else dict(files)

    def delete(name: str) -> Optional[int]:
        if sizes[name] is None:
            return None
        try:
            fs.delete_file(f"{root}/{name}")
        except FileNotFoundError:
            return None
        return sizes[name]

    names = sorted(files)
    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip(names, pool.map(delete, names)))
