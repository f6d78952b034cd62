"""What a compaction would rewrite, partition by partition, and why.

Invariants: read-only (the Delta log only); deterministic for one table version; a file at or above the window
floor (``min_size``) is never a candidate unless its deleted-rows share exceeds ``max_deleted_ratio``, so files
that already meet their target are never re-packed and a second run on an unchanged table plans 0 bytes; no
planned bin exceeds the target, and the target lies inside the window. Bins mirror Delta OPTIMIZE's own packing
(candidates sorted by size, filled up to the target), so the plan predicts what the executor will write.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Optional

import numpy as np

from pipeline_opt.delta import Snapshot, read_snapshot
from pipeline_opt.tables.partition_filter import PartitionFilter
from pipeline_opt.tables.settings import Window
from pipeline_opt.units import MIB, format_size


def adaptive_target(table_bytes: int, window: Window) -> tuple[int, str]:
    """Target file size for a table of ``table_bytes``, and the rule that chose it.

    Rule: ``table_bytes / 32`` rounded up to a power of two MiB, clamped to ``[min(4·min, max), max]``. Why: 32
    files keep every core of a cluster busy on a full scan until files reach the 1 GB ceiling (a 32 GB table);
    the floor of four times the window minimum keeps outputs clear of the floor even after deletes shrink them;
    powers of two keep the target stable while a table grows, so yesterday's outputs stay valid.
    """
    if window.target is not None:
        return window.target, "fixed target from settings"
    floor = min(4 * window.min_size, window.max_size)
    raw = max(table_bytes / 32, 1)
    pow2 = MIB * 2 ** int(np.ceil(np.log2(max(raw / MIB, 1))))
    target = int(min(max(pow2, floor), window.max_size))
    bounds = f"[{format_size(floor)}, {format_size(window.max_size)}]"
    return target, f"table {format_size(table_bytes)} / 32 → {format_size(pow2)}, clamped to {bounds}"


class BinKind(StrEnum):
    """Why a bin is rewritten, or why it waits (the first three pay)."""

    PURGE = "purge"                  # holds files with too many deleted rows
    INTO_WINDOW = "into_window"      # its output lands in the window
    BELOW_FLOOR = "below_floor"      # enough small files that merging pays although the output stays small
    SINGLE_FILE = "single_file"      # nothing to merge
    WAITS = "waits"                  # too few small files yet


PAYING = frozenset({BinKind.PURGE, BinKind.INTO_WINDOW, BinKind.BELOW_FLOOR})


@dataclass
class Bin:
    files: int
    bytes: int
    kind: BinKind
    reason: str

    @property
    def pays(self) -> bool:
        return self.kind in PAYING


@dataclass
class PartitionPlan:
    values: dict[str, Optional[str]]
    files: int
    bytes: int
    candidates: int
    candidate_bytes: int
    rewrite: bool
    reason: str
    bins: list[Bin] = field(default_factory=list)

    @property
    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.values.items()) or "(table)"

    @property
    def purges(self) -> bool:
        """Whether a paying bin holds files with too many deleted rows (OPTIMIZE alone leaves large ones)."""
        return any(b.kind is BinKind.PURGE for b in self.bins)


@dataclass
class CompactionPlan:
    path: str
    version: int
    partition_columns: list[str]
    min_size: int
    max_size: int
    target: int
    target_rule: str
    max_deleted_ratio: float
    row_bytes: float = 0.0  # bytes per physical row of the table (0: rows unknown): sizes row groups in rows
    partitions: list[PartitionPlan] = field(default_factory=list)

    @property
    def to_rewrite(self) -> list[PartitionPlan]:
        return [p for p in self.partitions if p.rewrite]

    @property
    def bytes_to_rewrite(self) -> int:
        return sum(b.bytes for p in self.to_rewrite for b in p.bins if b.pays)

    @property
    def files_to_rewrite(self) -> int:
        return sum(b.files for p in self.to_rewrite for b in p.bins if b.pays)

    def render(self) -> str:
        head = [f"{self.path} (version {self.version}): window {format_size(self.min_size)} – "
                f"{format_size(self.max_size)}, target {format_size(self.target)} ({self.target_rule})",
                f"  rewrite {len(self.to_rewrite)} of {len(self.partitions)} partitions: "
                f"{self.files_to_rewrite:,} files, {format_size(self.bytes_to_rewrite)}"]
        body = [f"  {'REWRITE' if p.rewrite else 'skip   '} {p.label}: {p.reason}" for p in self.partitions[:40]]
        more = [f"  … {len(self.partitions) - 40} more partitions"] if len(self.partitions) > 40 else []
        return "\n".join(head + body + more)


def plan_compaction(path: str, window: Window, partition_filter: Optional[PartitionFilter] = None,
                    min_bin_files: int = 4, max_deleted_ratio: float = 0.1,
                    files: Optional[Snapshot] = None) -> CompactionPlan:
    """Plan the compaction of the table at ``path`` (its latest version, or the snapshot ``files`` already read)."""
    files = files or read_snapshot(path)
    target, rule = adaptive_target(files.table_bytes, window)
    if partition_filter is not None:
        partition_filter.check_columns(files.partition_columns)
    plan = CompactionPlan(str(path), files.version, list(files.partition_columns), window.min_size, window.max_size,
                          target, rule, max_deleted_ratio)
    rows = int(files.rows.sum()) if files.actions.num_rows else 0
    plan.row_bytes = files.table_bytes / rows if rows > 0 else 0.0
    for key, idx in files.groups.items():
        values = files.values(key)
        if partition_filter is not None and not partition_filter.matches(values):
            continue
        plan.partitions.append(_plan_partition(values, files, idx, window, target, min_bin_files, max_deleted_ratio))
    return plan


def _plan_partition(values, files: Snapshot, idx: np.ndarray, window: Window, target: int,
                    min_bin_files: int, max_deleted_ratio: float) -> PartitionPlan:
    sizes, rows, deleted = files.sizes[idx], files.rows[idx], files.deleted[idx]
    ratio = np.divide(deleted, rows, out=np.zeros(len(idx)), where=rows > 0)
    is_candidate = (sizes < window.min_size) | (ratio > max_deleted_ratio)
    bins = []
    for b in _pack(sizes, np.flatnonzero(is_candidate), target):
        kind, why = _judge(len(b), int(sizes[b].sum()), window.min_size, min_bin_files,
                           deleted_heavy=bool((ratio[b] > max_deleted_ratio).any()))
        bins.append(Bin(len(b), int(sizes[b].sum()), kind, why))
    rewrite = any(b.pays for b in bins)
    reason = _partition_reason(bins, int(is_candidate.sum()), len(idx), window)
    return PartitionPlan(values, len(idx), int(sizes.sum()), int(is_candidate.sum()),
                         int(sizes[is_candidate].sum()), rewrite, reason, bins)


def _pack(sizes: np.ndarray, candidates: np.ndarray, target: int) -> list[np.ndarray]:
    """Delta OPTIMIZE's packing: candidates by ascending size, a new bin when the next file would pass target."""
    bins: list[np.ndarray] = []
    current: list[int] = []
    current_bytes = 0
    for i in candidates[np.argsort(sizes[candidates], kind="stable")]:
        if current and current_bytes + sizes[i] > target:
            bins.append(np.asarray(current))
            current, current_bytes = [], 0
        current.append(i)
        current_bytes += int(sizes[i])
    if current:
        bins.append(np.asarray(current))
    return bins


def _judge(n: int, nbytes: int, min_size: int, min_bin_files: int, deleted_heavy: bool) -> tuple[BinKind, str]:
    """A bin pays when it purges deleted rows, lands its output in the window, or merges enough small files.

    A couple of tiny files whose merge still sits below the floor does not pay: rewriting them every run would
    copy the same bytes again and again; they wait until ``min_bin_files`` have gathered.
    """
    if deleted_heavy:
        return BinKind.PURGE, "purges deleted rows"
    if n < 2:
        return BinKind.SINGLE_FILE, "a single file: nothing to merge"
    if nbytes >= min_size:
        return BinKind.INTO_WINDOW, f"merges {n} files into the window"
    if n >= min_bin_files:
        return BinKind.BELOW_FLOOR, f"merges {n} files (still below the window floor)"
    return BinKind.WAITS, f"only {n} small files, {format_size(nbytes)}: waits for {min_bin_files}"


def _partition_reason(bins: list[Bin], candidates: int, total: int, window: Window) -> str:
    if not candidates:
        return f"healthy: all {total} files at or above {format_size(window.min_size)}"
    paying = [b for b in bins if b.pays]
    if not paying:
        return f"{candidates} small file(s) but no bin pays ({bins[0].reason if bins else 'none'})"
    reasons = sorted({"purges" if b.kind is BinKind.PURGE else "merges" for b in paying})
    return (f"{sum(b.files for b in paying)} of {total} files in {len(paying)} bin(s), "
            f"{format_size(sum(b.bytes for b in paying))} ({', '.join(reasons)})")
