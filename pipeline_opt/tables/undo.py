"""The undo of a bad table rewrite (compaction, re-layout) that cannot lose a concurrent append.

``undo_rewrite(spark, path, rewrite_version) -> int`` puts back the content of ``rewrite_version - 1`` and keeps
every row that commits after the rewrite appended; it returns the version its (last) commit took.

Two ways, chosen per table:

1. **One reversing commit** (``method="commit"``; the default where it is safe): a commit that re-adds every file
   the rewrite removed (its add action as live at ``rewrite_version - 1``: size, partition values, stats, tags,
   deletion-vector descriptor, modification time) and removes every file the rewrite added, written with Delta's
   optimistic concurrency protocol: read the latest version V; every commit in (rewrite_version, V] must leave the
   rewrite's files alone and change neither metaData nor protocol (else ``UndoConflictError`` names the version
   to restore by hand, nothing is written); then commit V+1 put-if-absent (a temp file in ``_delta_log``, then
   ``os.link``, which fails when V+1 exists); a lost race re-reads, re-checks and retries. Appends, before or
   after, are never touched, and readers never see a pre-rewrite row missing that was there before the undo.
2. **RESTORE, then re-append** (``method="restore"``; the fallback): Delta ``RESTORE … TO VERSION AS OF
   rewrite_version - 1`` (commit R), then the rows of the files live at R-1 that were live neither at the rewrite
   nor at R — appends the RESTORE dropped, whenever they landed — are appended again (a time-travel read of R-1).
   Readers may briefly (between R and the re-append) miss rows appended after the rewrite; none is lost.

The reversing commit is used only when all hold, else the fallback runs:

- the table is on a local filesystem (no safe put-if-absent from Python on ``s3://``, ``abfss://``, ``gs://``,
  ``dbfs:/`` …);
- the protocol is at most writer version 7 and every writer feature is in ``SAFE_WRITER_FEATURES``: features whose
  rules a commit of old add actions under unchanged metadata keeps (the rows were valid under the same schema,
  constraints and generation expressions; deletion vectors and column-mapped stats are copied as they were;
  checkpoint formats are the checkpoint writer's business). Not in it (their writers must do more than add/remove):
  inCommitTimestamp, rowTracking, domainMetadata, clustering, icebergCompat*, coordinated or catalog-owned commits;
- the rewrite commit holds only add/remove (and commitInfo/txn) actions.

Named tables: a catalog table is committed to at its location like a path table. Catalog-coordinated commits show
in the protocol (``catalogManaged``/``catalogOwned-preview``/``coordinatedCommits-preview`` writer features, or a
``delta.coordinatedCommits.*`` property), which sends the undo to the fallback, as does any non-local location (Unity
Catalog managed tables live in cloud storage); the fallback addresses the table by its name.

appendOnly (``delta.appendOnly=true``): the protocol forbids removes with ``dataChange=true`` but allows rearranging
files with ``dataChange=false``. A dataChange=false rewrite is undone with every action ``dataChange=false`` (the net
change from ``rewrite_version - 1`` is then none, as the rewrite claimed); a rewrite that itself changed data, or the
fallback (RESTORE removes with dataChange=true), is refused.
"""
from __future__ import annotations

import json
import os
import re
import time
import uuid
from typing import Mapping, Optional
from urllib.parse import unquote

from pipeline_opt.delta import TableLike, TableRef, table_ref
from pipeline_opt.delta.actions import latest_version, replay
from pipeline_opt.delta.deletion_vectors import dv_file_path
from pipeline_opt.delta.fs import resolve
from pipeline_opt.delta.log import commit_actions
from pipeline_opt.delta.ref import local_location
from pipeline_opt.errors import DeltaLogError, PipelineOptError
from pipeline_opt.sql import quote_ident, sql_literal

UNDO_OPERATION = "pipeline_opt UNDO REWRITE"
SAFE_WRITER_FEATURES = frozenset({
    "appendOnly", "invariants", "checkConstraints", "generatedColumns", "identityColumns", "columnMapping",
    "deletionVectors", "timestampNtz", "changeDataFeed", "vacuumProtocolCheck", "v2Checkpoint", "typeWidening",
    "typeWidening-preview",
})
# writer features a legacy (pre-7) writer version implies
_LEGACY_WRITER = {2: {"appendOnly", "invariants"}, 3: {"checkConstraints"}, 4: {"changeDataFeed", "generatedColumns"},
                  5: {"columnMapping"}, 6: {"identityColumns"}}
_PLAIN_REWRITE = {"add", "remove", "commitInfo", "txn"}
_BLIND_APPEND = {"add", "commitInfo", "txn", "domainMetadata"}  # domainMetadata: a row-tracking append's high mark
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # a URI scheme (two letters at least: not a drive letter)


class UndoConflictError(PipelineOptError):
    """A commit after the rewrite touched the rewrite's files or the table's metadata: undo it by hand."""

    exit_code = 3


def undo_rewrite(spark, path: TableLike, rewrite_version: int, *, method: str = "auto", data_change: bool = True,
                 retries: int = 50) -> int:
    """Put back the content of ``rewrite_version - 1``, keeping every row appended since; the version committed.

    ``method``: "auto" (the reversing commit where safe, else RESTORE and re-append), "commit" (refuse where the
    reversing commit is not safe) or "restore". ``data_change``: the flag of the reversing commit's actions (true:
    streams and the change feed see the undo, like a RESTORE; appendOnly tables always mirror the rewrite's flags).
    """
    if method not in ("auto", "commit", "restore"):
        raise PipelineOptError(f"undo method {method!r}: expected auto, commit or restore")
    ref = table_ref(path)
    rewrite_version = int(rewrite_version)
    if rewrite_version < 1:
        raise PipelineOptError(f"{ref.label}: rewrite version {rewrite_version} has no version before it to put back")
    fs, log_dir = _log(ref)
    latest = latest_version(fs, log_dir)
    if rewrite_version > latest:
        raise DeltaLogError(f"{ref.label}: rewrite version {rewrite_version} is newer than the table ({latest})")
    rewrite = commit_actions(fs, log_dir, rewrite_version)
    removed = [a["remove"] for a in rewrite if a.get("remove")]
    before, protocol, metadata = replay(fs, log_dir, rewrite_version - 1, [r["path"] for r in removed])
    append_only = str((metadata.get("configuration") or {}).get("delta.appendOnly", "")).lower() == "true"
    why = _why_not_commit(ref, rewrite, protocol, metadata)
    if method == "restore" or (why is not None and method == "auto"):
        if append_only:
            raise UndoConflictError(f"{ref.label}: an appendOnly table, and the undo cannot be one reversing commit "
                                    f"({why or 'restore asked for'}); RESTORE would remove data: restore version "
                                    f"{rewrite_version - 1} by hand")
        return _undo_by_restore(spark, ref, fs, log_dir, rewrite_version)
    if why is not None:
        raise PipelineOptError(f"{ref.label}: cannot undo rewrite {rewrite_version} in one commit: {why}")
    return _undo_by_commit(ref, log_dir, rewrite_version, rewrite, before, append_only, data_change, retries)


# -- the reversing commit -----------------------------------------------------------------------------------------

def _undo_by_commit(ref: TableRef, log_dir: str, rewrite_version: int, rewrite: list[dict],
                    before: Mapping[str, dict], append_only: bool, data_change: Optional[bool], retries: int) -> int:
    removed = [a["remove"] for a in rewrite if a.get("remove")]
    added = [a["add"] for a in rewrite if a.get("add")]
    if not removed and not added:
        raise PipelineOptError(f"{ref.label}: version {rewrite_version} adds and removes no file: nothing to undo")
    missing = sorted(unquote(r["path"]) for r in removed if unquote(r["path"]) not in before)
    if missing:
        raise DeltaLogError(f"{ref.label}: files removed by version {rewrite_version} were not live at version "
                            f"{rewrite_version - 1}: {missing[:3]}")
    if append_only:
        if any(a.get("dataChange", True) for a in removed + added):
            raise UndoConflictError(f"{ref.label}: version {rewrite_version} changed data on an appendOnly table; "
                                    f"its undo would remove data: restore version {rewrite_version - 1} by hand")
        data_change = None
    _check_files_exist(ref, log_dir, rewrite_version, [before[unquote(r["path"])] for r in removed])
    touched = {unquote(a["path"]) for a in removed + added}
    checked = rewrite_version
    for _ in range(max(int(retries), 1)):
        latest = latest_version(_local_fs(), log_dir)
        for v in range(checked + 1, latest + 1):
            _check_later_commit(ref, v, commit_actions(_local_fs(), log_dir, v), touched, rewrite_version)
        checked = latest
        text = _commit_text(rewrite_version, latest, removed, added, before, data_change)
        if _put_if_absent(log_dir, latest + 1, text):
            return latest + 1
        time.sleep(0.01)
    raise PipelineOptError(f"{ref.label}: undo of rewrite {rewrite_version} lost the commit race {retries} times; "
                           f"run it again")


def _check_later_commit(ref: TableRef, version: int, actions: list[dict], touched: set, rewrite_version: int) -> None:
    for action in actions:
        kind = next(iter(action), "")
        if kind in ("metaData", "protocol"):
            raise UndoConflictError(f"{ref.label}: version {version} changed the table's {kind} after rewrite "
                                    f"{rewrite_version}; nothing written: restore version {rewrite_version - 1} by "
                                    f"hand")
        if kind in ("add", "remove") and unquote(action[kind]["path"]) in touched:
            raise UndoConflictError(f"{ref.label}: version {version} changed files of rewrite {rewrite_version} "
                                    f"({unquote(action[kind]['path'])}); nothing written: restore version "
                                    f"{rewrite_version - 1} by hand")


def _commit_text(rewrite_version: int, read_version: int, removed: list[dict], added: list[dict],
                 before: Mapping[str, dict], data_change: Optional[bool]) -> str:
    now = int(time.time() * 1000)

    def flag(action: Mapping) -> bool:  # None (appendOnly): mirror the rewrite's own flag (all false there)
        return bool(action.get("dataChange", True)) if data_change is None else bool(data_change)

    readds = []
    for r in removed:
        add = dict(before[unquote(r["path"])])
        add["dataChange"] = flag(r)
        readds.append({"add": add})
    removes = []
    for a in added:
        remove = {"path": a["path"], "deletionTimestamp": now, "dataChange": flag(a), "extendedFileMetadata": True,
                  "partitionValues": a.get("partitionValues") or {}, "size": a["size"]}
        for key in ("tags", "deletionVector", "baseRowId", "defaultRowCommitVersion"):
            if a.get(key) is not None:
                remove[key] = a[key]
        removes.append({"remove": remove})
    rows = sum(int(json.loads(a["add"].get("stats") or "{}").get("numRecords", 0)) for a in readds)
    info = {"commitInfo": {
        "timestamp": now, "operation": UNDO_OPERATION, "operationParameters": {"rewriteVersion": rewrite_version},
        "readVersion": read_version, "isolationLevel": "Serializable", "isBlindAppend": False,
        "operationMetrics": {"numRemovedFiles": str(len(removes)), "numAddedFiles": str(len(readds)),
                             "numRestoredRows": str(rows)},
        "userMetadata": f"pipeline_opt: undo of rewrite version {rewrite_version}",
        "engineInfo": "pipeline_opt", "txnId": str(uuid.uuid4()),
    }}
    return "".join(json.dumps(a, separators=(",", ":")) + "\n" for a in [info, *removes, *readds])


def _put_if_absent(log_dir: str, version: int, text: str) -> bool:
    """Write commit ``version`` unless it exists: a temp file, then a hard link (atomic, fails if present)."""
    target = os.path.join(log_dir, f"{version:020d}.json")
    tmp = os.path.join(log_dir, f".{version:020d}.json.{uuid.uuid4().hex}.tmp")
    with open(tmp, "x", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, target)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    try:
        fd = os.open(log_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return True


def _check_files_exist(ref: TableRef, log_dir: str, rewrite_version: int, adds: list[dict]) -> None:
    """The files (and deletion vectors) to re-add are still there: VACUUM may have deleted them."""
    root = os.path.dirname(log_dir)
    gone = []
    for add in adds:
        rel = unquote(add["path"])
        if "://" not in rel and not os.path.exists(rel if rel.startswith("/") else os.path.join(root, rel)):
            gone.append(rel)
        dv = add.get("deletionVector")
        if dv and dv.get("storageType") in ("u", "p"):
            dv_path = local_location(dv_file_path(root, dv))
            if "://" not in dv_path and not os.path.exists(dv_path):
                gone.append(dv_path)
    if gone:
        raise PipelineOptError(f"{ref.label}: files of version {rewrite_version - 1} are gone (vacuumed?): "
                               f"{gone[:3]}; the rewrite cannot be undone")


def _why_not_commit(ref: TableRef, rewrite: list[dict], protocol: Mapping, metadata: Mapping) -> Optional[str]:
    """Why the reversing commit is not safe for this table and rewrite, or None when it is."""
    if not is_local(ref.location):
        return f"{ref.location} is not on a local filesystem (no put-if-absent)"
    writer = int(protocol.get("minWriterVersion", 0) or 0)
    if writer > 7:
        return f"writer version {writer}"
    if writer == 7:
        features = set(protocol.get("writerFeatures") or [])
    else:
        features = set().union(*(f for v, f in _LEGACY_WRITER.items() if v <= writer))
    unsafe = sorted(features - SAFE_WRITER_FEATURES)
    if unsafe:
        return f"writer features {unsafe}"
    coordinated = sorted(k for k in (metadata.get("configuration") or {}) if k.startswith("delta.coordinatedCommits."))
    if coordinated:
        return f"coordinated commits ({coordinated[0]})"
    other = sorted({k for a in rewrite for k in a} - _PLAIN_REWRITE)
    if other:
        return f"the rewrite commit holds {other} actions"
    return None


def is_local(location: str) -> bool:
    """True for a table on the local filesystem (a path, or a ``file:`` URI)."""
    location = str(location)
    return location.startswith("file:") or not _REMOTE.match(location)


def _log(ref: TableRef):
    """(pyarrow filesystem, ``_delta_log`` path inside it); local tables as plain absolute paths."""
    if is_local(ref.location):
        return _local_fs(), os.path.join(os.path.abspath(local_location(ref.location)), "_delta_log")
    fs, root = resolve(ref.location)
    return fs, root.rstrip("/") + "/_delta_log"


def _local_fs():
    import pyarrow.fs as pafs

    return pafs.LocalFileSystem()


# -- the fallback: RESTORE, then re-append what it dropped ---------------------------------------------------------

def _undo_by_restore(spark, ref: TableRef, fs, log_dir: str, rewrite_version: int, attempts: int = 5) -> int:
    latest = latest_version(fs, log_dir)
    for v in range(rewrite_version + 1, latest + 1):
        _check_blind_append(ref, v, commit_actions(fs, log_dir, v), rewrite_version)
    target = rewrite_version - 1
    for attempt in range(attempts):
        try:
            spark.sql(f"RESTORE TABLE {ref.sql} TO VERSION AS OF {target}")
            break
        except Exception as e:  # a concurrent commit Delta's conflict check refused; try once more
            if "Concurrent" not in type(e).__name__ + str(e) or attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    restored = _find_commit(fs, log_dir, latest + 1, lambda info: info.get("operation") == "RESTORE" and str(
        (info.get("operationParameters") or {}).get("version")) == str(target))
    if restored is None:
        raise DeltaLogError(f"{ref.label}: the RESTORE to version {target} is not in the log")
    overridden = []  # not appends, landed between the check above and the RESTORE's own read: told after
    for v in range(latest + 1, restored):
        try:
            _check_blind_append(ref, v, commit_actions(fs, log_dir, v), rewrite_version)
        except UndoConflictError as e:
            overridden.append(str(e))
    appended = _reappend(spark, ref, fs, log_dir, rewrite_version, restored)
    if overridden:
        raise UndoConflictError(f"{overridden[0]}; RESTORE {restored} undid it too (appends kept, now version "
                                f"{appended}): check the table by hand")
    return appended


def _reappend(spark, ref: TableRef, fs, log_dir: str, rewrite_version: int, restored: int) -> int:
    """Append again the rows of files live at ``restored - 1``, not at the rewrite and not at ``restored``."""
    live_before = set(replay(fs, log_dir, restored - 1)[0])
    dropped = live_before - set(replay(fs, log_dir, rewrite_version)[0]) - set(replay(fs, log_dir, restored)[0])
    if not dropped:
        return restored
    marker = f"pipeline_opt: undo of rewrite version {rewrite_version}: re-append after RESTORE {restored}"
    columns = spark.sql(f"SELECT * FROM {ref.sql} VERSION AS OF {restored - 1} LIMIT 0").columns
    names = ", ".join(sql_literal(p.rsplit("/", 1)[-1]) for p in sorted(dropped))
    rows = spark.sql(f"SELECT {', '.join(quote_ident(c) for c in columns)} FROM {ref.sql} VERSION AS OF "
                     f"{restored - 1} WHERE element_at(split(_metadata.file_path, '/'), -1) IN ({names})")
    writer = rows.write.format("delta").mode("append").option("userMetadata", marker)
    if ref.name:
        writer.saveAsTable(ref.sql)
    else:
        writer.save(ref.location)
    appended = _find_commit(fs, log_dir, restored + 1, lambda info: info.get("userMetadata") == marker)
    return restored if appended is None else appended


def _check_blind_append(ref: TableRef, version: int, actions: list[dict], rewrite_version: int) -> None:
    kinds = {k for a in actions for k in a}
    rearranged = any(not a["add"].get("dataChange", True) for a in actions if "add" in a)
    if kinds - _BLIND_APPEND or rearranged:
        raise UndoConflictError(f"{ref.label}: version {version} after rewrite {rewrite_version} is not a blind "
                                f"append ({sorted(kinds - {'commitInfo'})}); restore version {rewrite_version - 1} "
                                f"by hand")


def _find_commit(fs, log_dir: str, start: int, match) -> Optional[int]:
    """The first version from ``start`` whose commitInfo ``match`` accepts."""
    for v in range(start, latest_version(fs, log_dir) + 1):
        for action in commit_actions(fs, log_dir, v):
            if "commitInfo" in action and match(action["commitInfo"] or {}):
                return v
    return None
