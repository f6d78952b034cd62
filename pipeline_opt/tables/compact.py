"""Executing a compaction plan, one verified commit per batch of partitions: with Delta's own OPTIMIZE in Spark, or
(``engine`` "delta-rs", or "auto" where ``tables.inprocess`` finds it safe) with delta-rs in this process, one
commit per partition, verified in-process the same way.

Invariants: nothing is ever lost — every commit is an OPTIMIZE (``dataChange = false``, atomic), verified
against the version just before it from only the files that commit removed and added, with a log check that nothing
else changed (a mismatch is undone and raised): by ``verify.check_or_restore`` in Spark, or by
``inprocess.check_or_undo`` in this process where ``inprocess.verifier_for`` finds the table readable here; a failure or
a kill loses at most the batch in flight, which never committed (a batch that fails with an error names the files it
wrote and did not commit, ``tables.leftovers``); a concurrent-modification conflict re-plans the
batch from the new log and retries with backoff, so a rival compaction's work is skipped, not repeated;
idempotent — the plan never selects files at or above the window floor, so a second run rewrites 0 bytes.
The OPTIMIZE knobs are session confs of a child session (``spark.newSession()``), so concurrent runs in one
application do not see each other's settings; on Spark Connect, which has no child sessions, they are set on the
caller's session and put back when the run ends. The table is addressed by catalog name or path (``TableRef``): SQL
names it, the plan reads its location's log.
"""
from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Callable, Optional

from pipeline_opt.delta import Snapshot, TableLike, TableRef, read_snapshot, table_ref
from pipeline_opt.errors import PipelineOptError, root_cause
from pipeline_opt.output import to_jsonable
from pipeline_opt.spark import scoped_session
from pipeline_opt.sql import partition_predicate, quote_ident
from pipeline_opt.tables.checks import warm_up
from pipeline_opt.tables.inprocess import Ahead, check_or_undo, engine_for, optimize_partition, verifier_for
from pipeline_opt.tables.leftovers import uncommitted_files
from pipeline_opt.tables.options import CompactOptions
from pipeline_opt.tables.plan import CompactionPlan, PartitionPlan, plan_compaction
from pipeline_opt.tables.settings import Window
from pipeline_opt.tables.verify import VerifyResult, check_or_restore, current_version, find_commit
from pipeline_opt.units import format_size

_CONFLICT = re.compile(r"(DELTA_CONCURRENT_[A-Z_]+|DELTA_METADATA_CHANGED|DELTA_PROTOCOL_CHANGED|"
                       r"Concurrent\w+Exception|MetadataChangedException|ProtocolChangedException|"
                       r"CommitFailedError)")  # the last is delta-rs' conflict
_CONF = "spark.databricks.delta.optimize."
_RUN_ID = "spark.databricks.delta.commitInfo.userMetadata"
_KEYS = (_CONF + "minFileSize", _CONF + "maxFileSize", _CONF + "maxDeletedRowsRatio", _RUN_ID)


class BatchKind(StrEnum):
    OPTIMIZE = "optimize"  # OPTIMIZE bin-packs the small files
    PURGE = "purge"        # REORG … APPLY (PURGE) rewrites files whose deletion vectors hide too many rows


@dataclass
class BatchResult:
    partitions: list[str]
    version: Optional[int]
    files_removed: int = 0
    files_added: int = 0
    bytes_removed: int = 0
    bytes_added: int = 0
    attempts: int = 1
    skipped: Optional[str] = None
    verification: Optional[VerifyResult] = None
    seconds: float = 0.0
    verify_seconds: float = 0.0


@dataclass
class CompactionResult:
    path: str
    dry_run: bool
    plan: CompactionPlan
    batches: list[BatchResult] = field(default_factory=list)
    conflicts: dict[str, int] = field(default_factory=dict)
    rows_before: int = 0
    rows_after: int = 0
    share_inside_before: float = 0.0
    share_inside_after: float = 0.0
    duration_s: float = 0.0
    files_before: int = 0  # live files of the table before and after the run
    files_after: int = 0
    engine: Optional[str] = None  # "spark" or "delta-rs" (None: nothing was rewritten)

    @property
    def files_removed(self) -> int:
        return sum(b.files_removed for b in self.batches)

    @property
    def files_added(self) -> int:
        return sum(b.files_added for b in self.batches)

    @property
    def bytes_rewritten(self) -> int:
        return sum(b.bytes_removed for b in self.batches)

    @property
    def partitions_touched(self) -> int:
        return sum(len(b.partitions) for b in self.batches if b.version is not None)

    @property
    def retries(self) -> int:
        """Batches run again after a concurrent-modification conflict (each try after the first)."""
        return sum(b.attempts - 1 for b in self.batches)

    @property
    def verified(self) -> bool:
        return all(b.verification is None or b.verification.ok for b in self.batches)

    def summary(self) -> dict:
        return {"path": self.path, "dry_run": self.dry_run, "target": self.plan.target,
                "planned_files": self.plan.files_to_rewrite, "planned_bytes": self.plan.bytes_to_rewrite,
                "files_removed": self.files_removed,
                "files_added": self.files_added, "bytes_rewritten": self.bytes_rewritten,
                "rows_before": self.rows_before, "rows_after": self.rows_after,
                "partitions_touched": self.partitions_touched, "commits": [b.version for b in self.batches
                                                                           if b.version is not None],
                "verified": self.verified, "engine": self.engine, "conflicts": self.conflicts, "retries": self.retries,
                "files_before": self.files_before, "files_after": self.files_after,
                "share_inside_before": round(self.share_inside_before, 4),
                "share_inside_after": round(self.share_inside_after, 4), "duration_s": round(self.duration_s, 2),
                "verify_s": round(sum(b.verify_seconds for b in self.batches), 2)}

    def to_dict(self) -> dict:
        """The ``--json`` form: the summary, the plan with its reasons, and each batch."""
        return {**self.summary(), "plan": to_jsonable(self.plan), "batches": to_jsonable(self.batches)}

    def render(self) -> str:
        if self.dry_run:
            return self.plan.render()
        s = self.summary()
        return "\n".join([self.plan.render(),
                          f"  done in {s['duration_s']} s: {s['files_removed']:,} files → {s['files_added']:,}, "
                          f"{format_size(s['bytes_rewritten'])} rewritten, {s['partitions_touched']} partitions, "
                          f"commits {s['commits']}, rows {s['rows_before']:,} → {s['rows_after']:,}, "
                          f"verified {s['verified']}, conflicts {s['conflicts'] or 'none'}, bytes in window "
                          f"{s['share_inside_before']:.0%} → {s['share_inside_after']:.0%}"])


def compact_table(spark, path: TableLike, options: CompactOptions, dry_run: bool = False,
                  progress: Callable[[str], None] = lambda msg: None) -> CompactionResult:
    """Plan, then (unless ``dry_run``) compact the table batch by batch, verifying each commit. ``spark``: the
    session, or a function that starts it, called only where Spark is needed (not by an in-process run that
    commits and verifies cleanly)."""
    start = time.monotonic()
    ref = table_ref(path)
    files = check_options(ref.location, options)
    plan = _plan(ref.location, options, files)
    result = CompactionResult(ref.label, dry_run, plan, rows_before=_live_rows(files),
                              share_inside_before=_share_inside(files, options.window),
                              files_before=files.actions.num_rows)
    progress(f"planned: {len(plan.to_rewrite)} partitions, {format_size(plan.bytes_to_rewrite)} to rewrite")
    if not dry_run and plan.to_rewrite:
        if options.verify:
            warm_up()
        result.engine, why = engine_for(options.engine, ref, plan, clustered=bool(options.cluster_by))
        progress(f"engine: {result.engine} ({why})")
        purges = [(BatchKind.PURGE, b) for b in _batches([p for p in plan.to_rewrite if p.purges],
                                                         options.batch_bytes)]
        if result.engine == "delta-rs":  # one commit per partition; Spark serves an undo's fallback and REORG
            _run_batches(spark, ref, [(BatchKind.OPTIMIZE, [p]) for p in plan.to_rewrite], plan, options, result,
                         progress, "delta-rs", "in-process")
        if result.engine == "spark" or purges:
            verifier, why = verifier_for("spark", ref, plan)
            if options.verify:
                progress(f"verifier of Spark's commits: {verifier} ({why})")
            with scoped_session(spark() if callable(spark) else spark, _KEYS) as session:
                _set_confs(session, plan, options)
                batches = ([(BatchKind.OPTIMIZE, b) for b in _batches(plan.to_rewrite, options.batch_bytes)]
                           if result.engine == "spark" else [])
                _run_batches(session, ref, batches + purges, plan, options, result, progress, "spark", verifier)
    after = read_snapshot(ref.location) if not dry_run else files
    result.rows_after, result.share_inside_after = _live_rows(after), _share_inside(after, options.window)
    result.files_after = after.actions.num_rows
    result.duration_s = time.monotonic() - start
    return result


def _run_batches(session, ref, batches, plan, options, result: CompactionResult, progress, engine: str,
                 verifier: str) -> None:
    for n, (kind, batch) in enumerate(batches, 1):
        tag = f"batch {n}/{len(batches)}"
        result.batches.append(_run_batch(session, ref, kind, batch, plan, options, result.conflicts, tag, progress,
                                         engine, verifier))


def check_options(path: TableLike, options: CompactOptions) -> Snapshot:
    """The table's latest snapshot, once the options are known to fit it: ordering columns are data columns and the
    partition filter names partition columns (so a caller can check every table before starting Spark)."""
    ref = table_ref(path)
    files = read_snapshot(ref.location)
    for column in options.zorder_by + options.cluster_by:
        if column not in files.columns or column in files.partition_columns:
            raise PipelineOptError(f"{ref.label}: cannot order by {column!r}; data columns: "
                                   f"{[c for c in files.columns if c not in files.partition_columns]}")
    if options.partition_filter is not None:
        options.partition_filter.check_columns(files.partition_columns)
    return files


def _plan(path: str, options: CompactOptions, files=None) -> CompactionPlan:
    return plan_compaction(path, options.window, options.partition_filter, options.min_bin_files,
                           options.max_deleted_ratio, files=files)


def _set_confs(session, plan: CompactionPlan, options: CompactOptions) -> None:
    # Only files below the window floor are candidates (no re-packing of files that already meet their target);
    # bins are filled up to the planned target.
    for key, value in ((_KEYS[0], plan.min_size), (_KEYS[1], plan.target), (_KEYS[2], options.max_deleted_ratio)):
        try:
            session.conf.set(key, str(value))
        except Exception as e:  # serverless compute allows only a few session confs
            raise PipelineOptError(f"this Spark session refuses {key} ({str(e).splitlines()[0][:160]}): compaction "
                                   "needs it to bound OPTIMIZE to the plan; run it on a job cluster") from None


def _batches(partitions: list[PartitionPlan], batch_bytes: int) -> list[list[PartitionPlan]]:
    batches: list[list[PartitionPlan]] = []
    current: list[PartitionPlan] = []
    size = 0
    for p in partitions:
        if current and size + p.candidate_bytes > batch_bytes:
            batches.append(current)
            current, size = [], 0
        current.append(p)
        size += p.candidate_bytes
    return batches + ([current] if current else [])


def _run_batch(session, ref, kind, batch, plan, options, conflicts, tag, progress, engine: str,
               verifier: str) -> BatchResult:
    t0 = time.monotonic()
    labels = [p.label for p in batch]
    for attempt in range(1, options.retries + 2):
        if attempt > 1:  # a rival commit changed the log: plan these partitions again from scratch
            batch = _replan(ref, options, batch, kind)
            if not batch:
                progress(f"{tag}: nothing left to do after a concurrent commit")
                return BatchResult(labels, None, attempts=attempt, skipped="done by a concurrent commit",
                                   seconds=time.monotonic() - t0)
        started = time.time()
        try:
            progress(f"{tag}: {kind} {len(batch)} partition(s), attempt {attempt}")
            result, ahead = ((_optimize(session, ref, kind, batch, plan, options), None) if engine == "spark"
                             else _optimize_in_process(ref, batch[0], plan, options))
        except Exception as e:  # noqa: BLE001 — only Delta's concurrency conflicts are retried
            conflict = _conflict_kind(e)
            if conflict is None:
                _name_leftovers(ref, kind, batch, started, e)
            if conflict is None or attempt > options.retries:
                raise
            conflicts[conflict] = conflicts.get(conflict, 0) + 1
            progress(f"{tag}: conflict {conflict}, retrying")
            time.sleep(options.backoff_s * 2 ** (attempt - 1))
            continue
        result.attempts, result.partitions = attempt, labels
        progress(f"{tag}: committed version {result.version}")
        if options.verify and result.version is not None:
            t_verify = time.monotonic()
            # One commit: verification reads only the files it removed and added (and checks the rest of the
            # snapshot from the log); ``where`` serves only where the log cannot be matched file by file.
            result.verification = (check_or_restore(session, ref, result.version - 1, result.version,
                                                    _where(plan, batch, options), touched=True)
                                   if verifier == "spark" else check_or_undo(session, ref, result.version, ahead))
            result.verify_seconds = time.monotonic() - t_verify
            progress(f"{tag}: verified version {result.version} against {result.version - 1}")
        result.seconds = time.monotonic() - t0
        return result
    raise AssertionError("unreachable")


def _name_leftovers(ref: TableRef, kind: BatchKind, batch: list[PartitionPlan], since: float,
                    error: Exception) -> None:
    """Raise an error naming the files the failed batch wrote and never committed, when there are any."""
    try:
        left = uncommitted_files(ref.location, [p.values for p in batch], since)
    except Exception:  # noqa: BLE001 — the batch's own error matters more than a failed look for leftovers
        return
    if left:
        shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        first = root_cause(error)
        raise PipelineOptError(f"{ref.label}: {kind} of {len(batch)} partition(s) failed ({first}); nothing was "
                               f"committed, the table is unchanged. {len(left)} uncommitted file(s) it wrote remain "
                               f"({shown}): no version references them, and VACUUM deletes them once they are older "
                               "than the retention") from error


def _replan(ref: TableRef, options: CompactOptions, batch: list[PartitionPlan], kind: BatchKind
            ) -> list[PartitionPlan]:
    wanted = {tuple(p.values.items()) for p in batch}
    fresh = [p for p in _plan(ref.location, options).to_rewrite if kind is BatchKind.OPTIMIZE or p.purges]
    return [p for p in fresh if tuple(p.values.items()) in wanted]


def _optimize(session, ref: TableRef, kind: BatchKind, batch: list[PartitionPlan], plan: CompactionPlan,
              options: CompactOptions) -> BatchResult:
    """One OPTIMIZE (or, for deletion-vector-heavy partitions, ``REORG … APPLY (PURGE)``) commit."""
    run_id = f"pipeline_opt-compact-{uuid.uuid4()}"
    session.conf.set(_RUN_ID, run_id)
    # OSS OPTIMIZE leaves large files with many deleted rows alone; Delta's REORG PURGE rewrites them.
    sql = f"{'OPTIMIZE' if kind is BatchKind.OPTIMIZE else 'REORG TABLE'} {ref.sql}"
    where = _where(plan, batch, options)
    if options.cluster_by and kind is BatchKind.OPTIMIZE:
        _ensure_clustering(session, ref, options.cluster_by)
    elif where:
        sql += " WHERE " + where
    if kind is BatchKind.PURGE:
        sql += " APPLY (PURGE)"
    elif options.zorder_by:
        sql += " ZORDER BY (" + ", ".join(quote_ident(c) for c in options.zorder_by) + ")"
    metrics = session.sql(sql).collect()[0]["metrics"]
    version = _commit_version(session, ref, run_id) if metrics["numFilesRemoved"] else None
    return BatchResult([], version, int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"]),
                       int(metrics["filesRemoved"]["totalSize"] or 0), int(metrics["filesAdded"]["totalSize"] or 0))


def _optimize_in_process(ref: TableRef, part: PartitionPlan, plan: CompactionPlan, options: CompactOptions
                         ) -> tuple[BatchResult, Optional[Ahead]]:
    commit = optimize_partition(ref.location, part, plan.target, f"pipeline_opt-compact-{uuid.uuid4()}",
                                zorder_by=options.zorder_by, row_bytes=plan.row_bytes,
                                fingerprint_ahead=options.verify)
    return BatchResult([], commit.version, commit.files_removed, commit.files_added, commit.bytes_removed,
                       commit.bytes_added), commit.ahead


def _where(plan: CompactionPlan, batch: list[PartitionPlan], options: CompactOptions) -> Optional[str]:
    """The batch's partitions as a predicate of quoted names and escaped values (None: the whole table)."""
    if not plan.partition_columns or options.cluster_by:
        return None
    return " OR ".join(f"({partition_predicate(p.values)})" for p in batch)


def _ensure_clustering(session, ref: TableRef, columns: list[str]) -> None:
    """Liquid clustering replaces partition filters: OPTIMIZE then clusters the whole table by ``columns``."""
    detail = session.sql(f"DESCRIBE DETAIL {ref.sql}").collect()[0]
    if list(detail["clusteringColumns"] or []) != list(columns):
        session.sql(f"ALTER TABLE {ref.sql} CLUSTER BY (" + ", ".join(quote_ident(c) for c in columns) + ")")


def _commit_version(session, ref: TableRef, run_id: str) -> int:
    """The version our OPTIMIZE committed, found by its run id (rival commits may have landed meanwhile)."""
    found = find_commit(session, ref, run_id)
    return current_version(session, ref) if found is None else found


def _conflict_kind(error: Exception) -> Optional[str]:
    m = _CONFLICT.search(f"{type(error).__name__}: {error}")
    return m.group(1) if m else None


def _live_rows(files: Snapshot) -> int:
    return files.live_rows


def _share_inside(files: Snapshot, window: Window) -> float:
    total = files.table_bytes
    inside = ((files.sizes >= window.min_size) & (files.sizes <= window.max_size)) * files.sizes
    return float(inside.sum() / total) if total else 1.0
