"""VACUUM of a Delta table: dry run by default, refusing unsafe retention.

Invariants: a dry run deletes nothing; retention below ``SAFE_RETENTION_HOURS`` (7 days, Delta's own default) is
refused unless the caller passes ``allow_unsafe=True``; Delta's retention check
(``RETENTION_CHECK_CONF``) is relaxed only for such an explicitly allowed run and put back as it was when the run
ends, whatever happens. Files that the current version or any version inside the retention needs are never listed
or deleted: the listing is Delta's own ``VACUUM … DRY RUN``, and the deletion Delta's own ``VACUUM``.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Optional

from pipeline_opt.delta import check_table_path
from pipeline_opt.errors import NotADeltaTableError, PipelineOptError
from pipeline_opt.sql import delta_ref
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

    def render(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        size = "unknown size" if self.bytes is None else format_size(self.bytes)
        lines = [f"{self.path}: VACUUM RETAIN {self.retention_hours:g} HOURS{' DRY RUN' if self.dry_run else ''}",
                 f"  {verb} {self.files:,} files ({size})"]
        lines += [f"    {p}" for p in self.sample]
        if self.files > len(self.sample):
            lines.append(f"    … {self.files - len(self.sample):,} more")
        if self.dry_run:
            lines.append("  dry run: nothing was deleted; run with --execute to delete")
        return "\n".join(lines)


def check_retention(retention_hours: float, allow_unsafe: bool) -> None:
    """Refuse a negative retention always, one below 7 days unless ``allow_unsafe``."""
    if retention_hours < 0:
        raise UnsafeRetentionError(f"retention {retention_hours:g} hours is negative")
    if retention_hours < SAFE_RETENTION_HOURS and not allow_unsafe:
        raise UnsafeRetentionError(
            f"retention {retention_hours:g} hours is below {SAFE_RETENTION_HOURS} hours (7 days): readers and "
            "writers still using older versions could lose files; pass --i-know-retention-is-unsafe to force it")


def vacuum(spark, path: str, retention_hours: float = SAFE_RETENTION_HOURS, dry_run: bool = True,
           allow_unsafe: bool = False) -> VacuumResult:
    """VACUUM the table at ``path``; a dry run unless ``dry_run=False``."""
    check_retention(retention_hours, allow_unsafe)
    path = check_table_path(path)
    relax = retention_hours < SAFE_RETENTION_HOURS  # only reachable with allow_unsafe
    with _retention_check(spark, relaxed=relax):
        listed = _dry_run_files(spark, path, retention_hours)
        sizes = _file_sizes(spark, listed)
        if not dry_run and listed:
            _run_sql(spark, path, f"VACUUM {delta_ref(path)} RETAIN {float(retention_hours)!r} HOURS")
    return VacuumResult(path, float(retention_hours), dry_run, len(listed),
                        None if sizes is None else sum(sizes), listed[:SAMPLE_FILES], relax)


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


def _dry_run_files(spark, path: str, retention_hours: float) -> list[str]:
    sql = f"VACUUM {delta_ref(path)} RETAIN {float(retention_hours)!r} HOURS DRY RUN"
    return sorted(row["path"] for row in _run_sql(spark, path, sql).collect())


def _file_sizes(spark, files: list[str]) -> Optional[list[int]]:
    """Sizes of the listed files through Spark's own file system layer (any storage Spark can read)."""
    if not files:
        return []
    try:
        rows = spark.read.format("binaryFile").load(files).select("length").collect()
    except Exception:  # a file vanished between listing and sizing (a concurrent VACUUM): size unknown
        return None
    return [int(r["length"]) for r in rows]


def _run_sql(spark, path: str, sql: str):
    try:
        return spark.sql(sql)
    except Exception as e:  # Spark's errors are JVM exceptions; turn the user-caused ones into named errors
        text = str(e)
        if "RETENTION_PERIOD_TOO_SHORT" in text:
            raise UnsafeRetentionError(f"{path}: Delta refused the retention (the table's "
                                       "delta.deletedFileRetentionDuration is longer): "
                                       f"{text.splitlines()[0]}") from None
        if "DELTA_MISSING_DELTA_TABLE" in text or "not a Delta table" in text:
            raise NotADeltaTableError(f"{path}: not a Delta table") from None
        raise
