"""Which configured tables to compact now: ranked by expected benefit, from the Delta log only.

Invariants: read-only and JVM-free (health and plan read each table's log with delta-rs), so a healthy table costs
one log read and nothing else; a table whose compaction plan rewrites nothing is never scheduled; with an access
log, a table nobody read is deferred (its small files cost no reads yet). Ranking: benefit = mean of the share
of files below the window and the share of bytes outside it (ties: more files to merge first), weighted by
``1 + log2(1 + reads)`` when an access log is given. Callers check every path before ranking any table.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from pipeline_opt.delta import read_snapshot
from pipeline_opt.tables.health import table_health
from pipeline_opt.tables.line_log import read_line_log
from pipeline_opt.tables.options import CompactOptions
from pipeline_opt.tables.plan import plan_compaction
from pipeline_opt.units import format_size


@dataclass
class TableSchedule:
    name: str
    path: str
    files: int
    bytes: int
    small_file_share: float
    outside_share: float
    files_to_rewrite: int
    bytes_to_rewrite: int
    reads: Optional[int]
    score: float
    compact_now: bool
    reason: str


@dataclass
class Schedule:
    config: str
    access_log: Optional[str]
    tables: list[TableSchedule] = field(default_factory=list)

    @property
    def to_compact(self) -> list[str]:
        return [t.name for t in self.tables if t.compact_now]

    def render(self) -> str:
        lines = [f"{self.config}: compact now {', '.join(self.to_compact) or 'nothing'}"]
        for t in self.tables:
            reads = "" if t.reads is None else f", {t.reads} reads"
            lines.append(f"  {'COMPACT' if t.compact_now else 'skip   '} {t.name} (score {t.score:.3f}): "
                         f"{t.files:,} files, {t.small_file_share:.0%} small, {t.outside_share:.0%} of bytes "
                         f"outside the window{reads}; {t.reason}")
        return "\n".join(lines)


def rank_tables(source: str, jobs: list[tuple[str, str, CompactOptions]],
                access_log: Optional[str] = None) -> Schedule:
    """Rank checked ``(name, path, CompactOptions)`` jobs; ``source`` names where they came from."""
    reads = read_access_log(access_log) if access_log else None
    rows = [_rank(name, path, options, reads) for name, path, options in jobs]
    rows.sort(key=lambda r: (-r.score, -r.files_to_rewrite, r.name))
    return Schedule(source, access_log, rows)


def _rank(name: str, path: str, options: CompactOptions, reads: Optional[Counter]) -> TableSchedule:
    snap = read_snapshot(path)
    s = table_health(path, options.window, snapshot=snap).stats
    plan = plan_compaction(path, options.window, options.partition_filter, options.min_bin_files,
                           options.max_deleted_ratio, files=snap)
    small = s.files_below / s.files if s.files else 0.0
    outside = (s.bytes_below + s.bytes_above) / s.bytes if s.bytes else 0.0
    n_reads = None if reads is None else reads[name] + reads[str(Path(path))]
    weight = 1.0 if n_reads is None else 1.0 + math.log2(1 + n_reads)
    score = (small + outside) / 2 * weight if plan.files_to_rewrite else 0.0
    if not plan.files_to_rewrite:
        now, reason = False, "healthy: the plan rewrites nothing"
    elif n_reads == 0:
        now, reason = False, "no reads in the access log: deferred"
    else:
        now, reason = True, f"plan rewrites {plan.files_to_rewrite:,} files ({format_size(plan.bytes_to_rewrite)})"
    return TableSchedule(name, path, s.files, s.bytes, round(small, 4), round(outside, 4), plan.files_to_rewrite,
                         plan.bytes_to_rewrite, n_reads, round(score, 4), now, reason)


def read_access_log(path: str) -> Counter:
    """Reads per table: JSON lines with a ``table`` key (name or path), or one table per line."""
    return Counter(_table_key(str(entry)) for _, entry in read_line_log(path, "access log", ("table",)))


def _table_key(text: str) -> str:
    """A table name as written, or a local path made absolute (so both spellings of one path match)."""
    if "/" in text and "://" not in text:
        return str(Path(text).expanduser().resolve())
    return text
