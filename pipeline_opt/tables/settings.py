"""Settings of the tables part (``conf/tables.yml``) and the file-size window every table job aims at.

Invariants: the default window — 16 MB to 1 GB — is defined here and nowhere else; a table's own settings win
over the defaults, which win over the window's defaults; a loaded config never holds a window whose floor lies
above its ceiling or a fixed target outside it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from pipeline_opt.errors import ConfigError, PipelineOptError
from pipeline_opt.units import ByteSize


class WindowError(PipelineOptError):
    """The size window or the target is inconsistent."""


@dataclass(frozen=True)
class Window:
    """The file-size window ``[min_size, max_size]`` and an optional fixed target inside it."""

    min_size: int
    max_size: int
    target: Optional[int] = None

    def __post_init__(self) -> None:
        if self.min_size <= 0 or self.min_size > self.max_size:
            raise WindowError(f"window min {self.min_size} must be positive and at most max {self.max_size}")
        if self.target is not None and not self.min_size <= self.target <= self.max_size:
            raise WindowError(f"target {self.target} is outside the window [{self.min_size}, {self.max_size}]")

    def with_overrides(self, min_size: Optional[int] = None, max_size: Optional[int] = None,
                       target: Optional[int] = None) -> "Window":
        """This window with the given bounds replaced (None keeps the current one)."""
        return Window(self.min_size if min_size is None else int(min_size),
                      self.max_size if max_size is None else int(max_size),
                      self.target if target is None else int(target))


# Files below 16 MB make scans pay per-file overhead; above 1 GB a file stops splitting work across cores.
DEFAULT_WINDOW = Window(16 * 10**6, 10**9)
ENGINES = ("auto", "spark", "delta-rs")  # compaction engines: Delta's OPTIMIZE in Spark, or delta-rs in process


@dataclass
class TableSettings:
    name: str
    path: str
    min_file_size: Optional[ByteSize] = None  # None: the defaults' window
    max_file_size: Optional[ByteSize] = None
    zorder_by: list[str] = field(default_factory=list)
    cluster_by: list[str] = field(default_factory=list)
    partition_filter: Optional[str] = None
    vacuum_retention_hours: Optional[int] = None
    target_file_size: Optional[ByteSize] = None  # None: adaptive to table size (tables.plan.adaptive_target)
    engine: Optional[str] = None  # None: the defaults' compaction engine

    def validate(self) -> None:
        _check_engine(f"tables.{self.name}", self.engine)
        if self.vacuum_retention_hours is not None and self.vacuum_retention_hours < 0:
            raise ValueError(f"tables.{self.name}: vacuum_retention_hours {self.vacuum_retention_hours} must be at "
                             "least 0")
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", self.name):
            raise ValueError(f"tables: name {self.name!r} may hold only letters, digits, '_', '.' and '-'")
        bad = [c for c in self.zorder_by + self.cluster_by if not c or re.search(r"[\x00-\x1f`;]", c)]
        if bad:
            raise ValueError(f"tables.{self.name}: column name {bad[0]!r} is not allowed")
        if self.zorder_by and self.cluster_by:
            raise ValueError(f"tables.{self.name}: use zorder_by or cluster_by, not both")


def _check_engine(where: str, engine: Optional[str]) -> None:
    if engine is not None and engine not in ENGINES:
        raise ValueError(f"{where}.engine: {engine!r} must be one of {', '.join(ENGINES)}")


@dataclass
class TableDefaults:
    min_file_size: ByteSize = ByteSize(DEFAULT_WINDOW.min_size)
    max_file_size: ByteSize = ByteSize(DEFAULT_WINDOW.max_size)
    vacuum_retention_hours: int = 168
    target_file_size: Optional[ByteSize] = None  # None: adaptive to table size
    min_bin_files: int = 4  # a bin whose output stays below the window is rewritten only with this many files
    max_deleted_rows_ratio: float = 0.1  # files with a larger deleted-rows share are rewritten
    batch_bytes: ByteSize = ByteSize(2 * 10**9)  # bytes of small files per commit (a failure loses one batch)
    engine: str = "spark"  # the compaction engine: one of ENGINES (tables.inprocess says when "auto" picks delta-rs)

    def validate(self) -> None:
        _check_engine("defaults", self.engine)
        if self.vacuum_retention_hours < 0:
            raise ValueError(f"defaults.vacuum_retention_hours: {self.vacuum_retention_hours} must be at least 0")
        if not 1 <= self.min_bin_files <= 10**6:
            raise ValueError(f"defaults.min_bin_files: {self.min_bin_files} must be a whole number from 1 to 1000000")
        if not 0 <= self.max_deleted_rows_ratio <= 1:
            raise ValueError(f"defaults.max_deleted_rows_ratio: {self.max_deleted_rows_ratio} must be a share of "
                             "rows from 0 to 1")
        if self.batch_bytes <= 0:
            raise ValueError(f"defaults.batch_bytes: {self.batch_bytes!r} must be positive")


@dataclass
class TablesConfig:
    defaults: TableDefaults = field(default_factory=TableDefaults)
    tables: list[TableSettings] = field(default_factory=list)

    def validate(self) -> None:
        names = [t.name for t in self.tables]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tables: duplicate table names {dupes}")
        for t in [None, *self.tables]:
            where = f"tables.{t.name}" if t else "defaults"
            try:
                self.window(t)
            except WindowError as e:
                raise ValueError(f"{where}: {e}") from None

    def window(self, t: Optional[TableSettings] = None) -> Window:
        """The window of table ``t`` (the defaults' window for None), its own settings winning over the defaults."""
        d = self.defaults
        base = Window(int(d.min_file_size), int(d.max_file_size),
                      None if d.target_file_size is None else int(d.target_file_size))
        if t is None:
            return base
        return Window(int(t.min_file_size if t.min_file_size is not None else base.min_size),
                      int(t.max_file_size if t.max_file_size is not None else base.max_size),
                      int(t.target_file_size) if t.target_file_size is not None else base.target)

    def retention_hours(self, t: TableSettings) -> float:
        """The table's VACUUM retention: its own, else the defaults'."""
        return float(t.vacuum_retention_hours if t.vacuum_retention_hours is not None
                     else self.defaults.vacuum_retention_hours)

    def table(self, name: str) -> TableSettings:
        for t in self.tables:
            if t.name == name:
                return t
        raise ConfigError(f"unknown table {name!r}; configured: {', '.join(t.name for t in self.tables) or 'none'}")

    def chosen(self, names: Optional[list[str]] = None) -> list[TableSettings]:
        """The tables named (every configured table when ``names`` is empty), in the order asked."""
        chosen = [self.table(n) for n in names] if names else list(self.tables)
        if not chosen:
            raise ConfigError("no tables configured")
        return chosen
