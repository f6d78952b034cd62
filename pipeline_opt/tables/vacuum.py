"""VACUUM of a Delta table: dry run by default, refusing unsafe retention.

Invariants: a dry run deletes nothing; retention below ``SAFE_RETENTION_HOURS`` (7 days, Delta's own default) is
refused unless the caller passes ``allow_unsafe=True``; Delta's retention check
(``RETENTION_CHECK_CONF``) is relaxed only for such an explicitly allowed run and put back as it was when the run
ends, whatever happens. Files that the current version or any version inside the retention needs are never listed
or deleted: the listing is Delta's own ``VACUUM … DRY RUN``, and the deletion Delta's own ``VACUUM``. Only SQL and
session confs are used, so any session (Spark Connect included) runs it, on a table named by path or catalog name.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Mapping, Optional

from pipeline_opt.delta import TableLike, TableRef, check_table_path
from pipeline_opt.delta.leases import active_leases, retention_for
from pipeline_opt.errors import NotADeltaTableError, PipelineOptError
from pipeline_opt.units import format_size

SAFE_RETENTION_HOURS = 168
RETENTION_CHECK_CONF = "spark.databricks.delta.retentionDurationCheck.enabled"
SAMPLE_FILES = 20


class UnsafeRetentionError(PipelineOptError):
    """A retention below 7 days was asked for without the explicit unsafe flag, or Delta refused it."""


@dataclass
class VacuumResult:
    """Files and bytes that VACUUM deleted (or, for a dry run, would delete)."""

    path: str
    retention_hours: float
    dry_run: bool
    files: int
    bytes: Optional[int]
    sample: list[str] = field(default_factory=list)
    retention_check_relaxed: bool = False
    requested_retention_hours: Optional[float] = None
    held_by: list[str] = field(default_factory=list)  # readers whose leases stretched the retention

    def render(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        size = "unknown size" if self.bytes is None else format_size(self.bytes)
        lines = [f"{self.path}: VACUUM RETAIN {self.retention_hours:g} HOURS{' DRY RUN' if self.dry_run else ''}",
                 f"  {verb} {self.files:,} files ({size})"]
        if self.held_by and self.requested_retention_hours != self.retention_hours:
            lines.append(f"  retention stretched from {self.requested_retention_hours:g} h for running readers: "
                         + "; ".join(self.held_by))
        lines += [f"    {p}" for p in self.sample]
        if self.files > len(self.sample):
            lines.append(f"    … {self.files - len(self.sample):,} more")
        if self.dry_run:
            lines.append("  dry run: nothing was deleted; run with --execute to delete")
        return "\n".join(lines)


def check_retention(retention_hours: float, allow_unsafe: bool) -> None:
    """Refuse a negative retention always, one below 7 days unless ``allow_unsafe``."""
    if not math.isfinite(retention_hours):  # NaN compares false with everything and would pass the checks below
        raise UnsafeRetentionError(f"retention {retention_hours!r} hours is not a finite number")
    if retention_hours < 0:
        raise UnsafeRetentionError(f"retention {retention_hours:g} hours is negative")
    if retention_hours < SAFE_RETENTION_HOURS and not allow_unsafe:
        raise UnsafeRetentionError(
            f"retention {retention_hours:g} hours is below {SAFE_RETENTION_HOURS} hours (7 days): readers and "
            "writers still using older versions could lose files; pass --i-know-retention-is-unsafe to force it")


def vacuum(spark, path: TableLike, retention_hours: float = SAFE_RETENTION_HOURS, dry_run: bool = True,
           allow_unsafe: bool = False, storage_options: Optional[Mapping[str, str]] = None) -> VacuumResult:
    """VACUUM the table at ``path`` (a checked path, or a resolved ``TableRef``); a dry run unless ``dry_run=False``.

    Readers' leases (``delta.leases``) stretch the retention back to the oldest version a running reader holds, so
    its files stay; ``storage_options`` reach the leases of a table on object storage."""
    check_retention(retention_hours, allow_unsafe)
    ref = path if isinstance(path, TableRef) else TableRef(check_table_path(path))
    requested = float(retention_hours)
    held = active_leases(ref.location, storage_options)
    retention_hours = retention_for(requested, held)
    relax = retention_hours < SAFE_RETENTION_HOURS  # only reachable with allow_unsafe
    with _retention_check(spark, relaxed=relax):
        listed = _dry_run_files(spark, ref, retention_hours)
        sizes = _file_sizes(spark, listed)
        if not dry_run and listed:
            _run_sql(spark, ref, f"VACUUM {ref.sql} RETAIN {float(retention_hours)!r} HOURS")
    return VacuumResult(ref.label, float(retention_hours), dry_run, len(listed),
                        None if sizes is None else sum(sizes), listed[:SAMPLE_FILES], relax,
                        requested, [f"{lease.holder} holds version {lease.version}" for lease in held])


@contextmanager
def _retention_check(spark, relaxed: bool):
    """Delta's retention check off inside the block when ``relaxed``; the previous setting back afterwards."""
    if not relaxed:
        yield
        return
    previous = spark.conf.get(RETENTION_CHECK_CONF, None)
    spark.conf.set(RETENTION_CHECK_CONF, "false")
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(RETENTION_CHECK_CONF)
        else:
            spark.conf.set(RETENTION_CHECK_CONF, previous)


def _dry_run_files(spark, ref: TableRef, retention_hours: float) -> list[str]:
    sql = f"VACUUM {ref.sql} RETAIN {float(retention_hours)!r} HOURS DRY RUN"
    return sorted(row["path"] for row in _run_sql(spark, ref, sql).collect())


def _file_sizes(spark, files: list[str]) -> Optional[list[int]]:
    """Sizes of the listed files through Spark's own file system layer (any storage Spark can read)."""
    if not files:
        return []
    try:
        rows = spark.read.format("binaryFile").load(files).select("length").collect()
    except Exception:  # a file vanished between listing and sizing (a concurrent VACUUM): size unknown
        return None
    return [int(r["length"]) for r in rows]


def _run_sql(spark, ref: TableRef, sql: str):
    try:
        return spark.sql(sql)
    except Exception as e:  # Spark's errors are JVM exceptions; turn the user-caused ones into named errors
        text = str(e)
        if "RETENTION_PERIOD_TOO_SHORT" in text:
            raise UnsafeRetentionError(f"{ref.label}: Delta refused the retention (the table's "
                                       "delta.deletedFileRetentionDuration is longer): "
                                       f"{text.splitlines()[0]}") from None
        if "DELTA_MISSING_DELTA_TABLE" in text or "not a Delta table" in text:
            raise NotADeltaTableError(f"{ref.label}: not a Delta table") from None
        raise
