"""Compaction in this process with delta-rs, for a table one machine handles: no JVM, no Spark job per batch.

``engine_for`` chooses per table between ``"spark"`` (Delta's OPTIMIZE, any table, any cluster) and ``"delta-rs"``;
``"auto"`` takes delta-rs only where it is known to be safe and fast: a path table on local storage (the undo's
reversing commit needs an atomic put-if-absent), a protocol whose writer features delta-rs keeps, no liquid clustering
(delta-rs cannot write a clustered table; Z-order it does, with ``optimize.z_order``), no null partition value among
the planned partitions (delta-rs' partition filters cannot name one) and at most ``ONE_MACHINE_BYTES`` to rewrite.
Purging deletion vectors stays Spark's ``REORG`` either way (``compact`` runs those batches in Spark after the
in-process ones).

Invariants: one planned partition is one commit — delta-rs' OPTIMIZE of exactly that partition (``dataChange =
false``, delta-rs' own conflict checks, our run id in the commit's ``userMetadata``); it is verified from the files
it touched — the log check of ``verify.touched_files`` plus Arrow fingerprints of the removed files at the version
before and the added files at the commit, judged by the same five-check suite (``checks.compare``) — and a mismatch
is undone by ``undo.undo_rewrite`` and raised. delta-rs bins every file below the target, so a partition's files
between the window floor and the target may be packed too (a Z-order rewrites every file of the partition); the plan
still decides which partitions are touched. Z-ordered files are written in ``ROW_GROUPS_PER_ORDERED_FILE`` row
groups, because each row group's min/max lets a reader skip inside a file too.
"""
from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from pipeline_opt.delta import TableRef, read_snapshot
from pipeline_opt.delta.table import open_table
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.tables.arrow_fingerprint import arrow_fingerprint, polars_installed
from pipeline_opt.tables.checks import compare
from pipeline_opt.tables.plan import CompactionPlan, PartitionPlan
from pipeline_opt.tables.settings import ENGINES
from pipeline_opt.tables.undo import is_local, undo_rewrite
from pipeline_opt.tables.verify import Untouchable, VerificationError, VerifyResult, touched_files

ONE_MACHINE_BYTES = 16 * 2**30  # above this a cluster's OPTIMIZE is the better engine, even where delta-rs could
ROW_GROUPS_PER_ORDERED_FILE = 8
MIN_ROW_GROUP_ROWS = 16_384  # below this, per-group overhead outweighs what finer skipping saves
# Writer features whose rules an OPTIMIZE by delta-rs keeps (it writes them, or they constrain only new data).
DELTA_RS_WRITER_FEATURES = frozenset({"appendOnly", "invariants", "checkConstraints", "deletionVectors",
                                      "timestampNtz", "changeDataFeed", "generatedColumns"})


@dataclass(frozen=True)
class Ahead:
    """The fingerprint of the files delta-rs was expected to remove, taken while it rewrote them: usable when the
    commit removed exactly ``paths`` and landed right after ``version`` (no rival commit between)."""

    version: int
    paths: frozenset
    fingerprint: Future


@dataclass
class Commit:
    version: Optional[int]  # None: delta-rs found nothing to rewrite
    files_removed: int
    files_added: int
    bytes_removed: int
    bytes_added: int
    ahead: Optional[Ahead] = None


def engine_for(requested: str, ref: TableRef, plan: CompactionPlan, *, clustered: bool) -> tuple[str, str]:
    """(engine, why) for this table; ``clustered``: the options ask for liquid clustering."""
    if requested not in ENGINES:
        raise PipelineOptError(f"compaction engine {requested!r}: expected one of {', '.join(ENGINES)}")
    if requested == "spark":
        return "spark", "asked for"
    why_not = _why_not_delta_rs(ref, plan, clustered)
    if requested == "delta-rs" and why_not:
        raise PipelineOptError(f"{ref.label}: cannot compact with delta-rs: {why_not}; use --engine spark")
    return ("spark", why_not) if why_not else ("delta-rs", "a local path table one machine handles")


def verifier_for(engine: str, ref: TableRef, plan: CompactionPlan) -> tuple[str, str]:
    """(verifier, why): whose reads verify the commits, ``"in-process"`` (``check_or_undo``) or ``"spark"``
    (``verify.check_or_restore``). In process for every commit the delta-rs engine makes, and for Spark's commits of
    a table this machine reads itself — a local path table (whose log ``compact_table`` has already read here),
    polars installed, at most ``ONE_MACHINE_BYTES`` to rewrite — where it took 0.23× the Spark verifier's wall time
    on the same TPC-H 1 commit (``benchmarks/verification.py``). Spark reads a catalog table, object storage or a
    bigger rewrite."""
    if engine == "delta-rs":
        return "in-process", "the engine's own"
    why_not = _why_not_here(ref, "read")
    if why_not is None and not polars_installed():
        why_not = "polars is not installed (the verify extra)"
    why_not = why_not or _why_too_big(plan)
    return ("spark", why_not) if why_not else ("in-process", "a local path table this machine reads")


def _why_not_here(ref: TableRef, access: str) -> Optional[str]:
    """Why this process does not ``access`` the table's files itself (None: it does)."""
    if ref.name is not None:
        return f"a catalog table is {access} through its catalog"
    if not is_local(ref.location):
        return "not on local storage"
    return None


def _why_too_big(plan: CompactionPlan) -> Optional[str]:
    return f"more than {ONE_MACHINE_BYTES // 2**30} GiB to rewrite" if plan.bytes_to_rewrite > ONE_MACHINE_BYTES \
        else None


def _why_not_delta_rs(ref: TableRef, plan: CompactionPlan, clustered: bool) -> Optional[str]:
    why_not = _why_not_here(ref, "written")
    if why_not:
        return why_not
    if clustered:
        return "liquid clustering is Spark's"
    if any(v is None for p in plan.to_rewrite for v in p.values.values()):
        return "a null partition value cannot be named in delta-rs' partition filters"
    why_not = _why_too_big(plan)
    if why_not:
        return why_not
    table = open_table(ref.location)
    protocol = table.protocol()
    extra = set(protocol.writer_features or ()) - DELTA_RS_WRITER_FEATURES
    if extra:
        return f"writer features delta-rs does not keep: {', '.join(sorted(extra))}"
    # Legacy protocols (writer version 5 or 6) list no features: column mapping shows only in the properties.
    if (table.metadata().configuration or {}).get("delta.columnMapping.mode", "none") != "none":
        return "column mapping"
    if protocol.min_writer_version > 7:
        return f"writer version {protocol.min_writer_version}"
    return None


def optimize_partition(location: str, part: PartitionPlan, target: int, run_id: str, *,
                       zorder_by: Sequence[str] = (), row_bytes: float = 0.0,
                       fingerprint_ahead: bool = False) -> Commit:
    """One delta-rs OPTIMIZE commit of the partition ``part`` (the whole table when it has no partition values),
    Z-ordered by ``zorder_by`` if given (``row_bytes``: the table's bytes per row, which sizes the row groups).
    ``fingerprint_ahead``: meanwhile, fingerprint the files it is expected to remove (delta-rs releases the GIL while
    it rewrites, so the verification's first half overlaps the rewrite)."""
    from deltalake import CommitProperties, WriterProperties

    ahead = _fingerprint_ahead(location, part, target, every=bool(zorder_by)) if fingerprint_ahead else None
    table = open_table(location)
    filters = [(column, "=", value) for column, value in part.values.items()] or None
    commit = CommitProperties(custom_metadata={"userMetadata": run_id})
    # Snappy, as Spark writes Delta by default (delta-rs' default is ZSTD): the files read alike whichever engine wrote.
    if zorder_by:
        rows = int(target / ROW_GROUPS_PER_ORDERED_FILE / row_bytes) if row_bytes > 0 else 0
        props = WriterProperties(compression="SNAPPY",
                                 max_row_group_size=max(rows, MIN_ROW_GROUP_ROWS) if rows else None)
        metrics = table.optimize.z_order(list(zorder_by), partition_filters=filters, target_size=int(target),
                                         writer_properties=props, commit_properties=commit)
    else:
        metrics = table.optimize.compact(partition_filters=filters, target_size=int(target),
                                         writer_properties=WriterProperties(compression="SNAPPY"),
                                         commit_properties=commit)
    removed, added = int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"])
    version = table.version() if removed else None
    return Commit(version, removed, added, _total(metrics["filesRemoved"]), _total(metrics["filesAdded"]), ahead)


def _fingerprint_ahead(location: str, part: PartitionPlan, target: int, every: bool = False) -> Ahead:
    """Start fingerprinting the partition's files below ``target`` (``every``: all of them, as a Z-order rewrites
    them all): the files delta-rs' OPTIMIZE removes."""
    snap = read_snapshot(location)
    key = tuple(part.values.get(c) for c in snap.partition_columns)
    indexes = snap.groups.get(key, np.zeros(0, np.int64)) if snap.partition_columns else np.arange(len(snap.paths))
    paths = [snap.paths[i] for i in indexes if every or snap.sizes[i] < target]
    pool = ThreadPoolExecutor(1, thread_name_prefix="pipeline_opt-fingerprint-ahead")
    future = pool.submit(arrow_fingerprint, snap, paths)
    pool.shutdown(wait=False)  # the fingerprint runs on; its future is waited for by the verification
    return Ahead(snap.version, frozenset(paths), future)


def _total(stats) -> int:
    return int((json.loads(stats) if isinstance(stats, str) else stats or {}).get("totalSize") or 0)


def verify_commit(location: str, version: int, ahead: Optional[Ahead] = None) -> VerifyResult:
    """The suite's verdict on the rewrite commit ``version``, from Arrow fingerprints of the files it touched (of the
    whole versions where the log cannot be matched file by file); ``ahead``, where it matches the commit, stands for
    the removed files' fingerprint."""
    before, after = read_snapshot(location, version - 1), read_snapshot(location, version)
    try:
        scope = touched_files(location, version)
    except Untouchable:
        removed, added, kind = before.paths, after.paths, "table"
    else:
        if scope.problems:
            return VerifyResult(location, version - 1, version, False, 1,
                                [f"delta log check failed: {p}" for p in scope.problems], engine="delta_log",
                                scope="touched")
        removed, added, kind = list(scope.removed), list(scope.added), "touched"
    early = ahead is not None and ahead.version == version - 1 and kind == "touched" and ahead.paths == set(removed)
    expected = ahead.fingerprint.result() if early and ahead else arrow_fingerprint(before, removed)
    actual = arrow_fingerprint(after, added)
    if (expected.rows, expected.row_checksum) != (actual.rows, actual.row_checksum):  # name the changed columns
        expected = arrow_fingerprint(before, removed, column_checksums=True)
        actual = arrow_fingerprint(after, added, column_checksums=True)
    failures, checks, engine = compare(None, expected, actual)
    return VerifyResult(location, version - 1, version, not failures, checks, failures, engine=engine, scope=kind)


def check_or_undo(spark, ref: TableRef, version: int, ahead: Optional[Ahead] = None) -> VerifyResult:
    """Verify the commit ``version``; on a mismatch undo it and raise ``VerificationError``. ``spark`` (a session,
    or a function that starts one) serves only an undo that cannot be one reversing commit."""
    result = verify_commit(ref.location, version, ahead)
    if result.ok:
        return result
    method = "restore" if result.engine == "delta_log" else "auto"
    result.restored_to = undo_rewrite(spark() if callable(spark) else spark, ref, version, method=method)
    raise VerificationError(f"{ref.label}: rewrite at version {version} changed the data "
                            f"({'; '.join(result.failures)}); restored (now version {result.restored_to})")
