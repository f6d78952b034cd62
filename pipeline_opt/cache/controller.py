"""Which tables stay cached under a byte budget, and the actions that get there.

Invariants:
- the kept tables' bytes never exceed the budget (each policy counts its metadata inside its capacity, and the plan
  re-checks the sum);
- the plan is a pure function of the access log, the budget, the policy and the current cache state: planning twice
  gives the same plan, and applying a plan twice runs its statements once (the second run finds nothing to change);
- dry run by default: nothing runs unless ``apply=True``;
- table names are validated and quoted with backticks; a location must not contain a backtick.

The ranking replays the access log (one request per table read, sized by the table) through a registered cache
policy with the budget as its capacity; the tables it holds at the end stay hot. Actions: Spark ``CACHE TABLE`` /
``UNCACHE TABLE``, Databricks disk-cache warming (``CACHE SELECT``, only where the Databricks runtime is present),
and the loader's local file-cache keep list (the kept tables' live files, from their Delta logs).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Optional

from pipeline_opt.cache import policies
from pipeline_opt.cache.access_log import Access, local_path, table_bytes
from pipeline_opt.delta import open_table
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.spark import is_databricks
from pipeline_opt.sql import quote_ident

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")


class CachePlanError(PipelineOptError):
    """A table name or location cannot be used safely, or the log holds nothing to plan."""


@dataclass
class TableUse:
    table: str
    location: str
    bytes: int
    reads: int
    keep: bool = False


class ActionKind(StrEnum):
    CACHE_TABLE = "cache_table"          # Spark CACHE TABLE
    UNCACHE_TABLE = "uncache_table"      # Spark UNCACHE TABLE
    DISK_CACHE_WARM = "disk_cache_warm"  # Databricks CACHE SELECT (disk cache)


@dataclass
class Action:
    kind: ActionKind
    table: str
    statement: str
    supported: bool = True
    applied: bool = False


@dataclass
class CachePlan:
    budget_bytes: int
    policy: str
    dry_run: bool
    kept_bytes: int = 0
    tables: list[TableUse] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    loader_keep: list[str] = field(default_factory=list)
    unsized: list[str] = field(default_factory=list)


def sql_name(table: str, location: str = "") -> str:
    """A safe SQL identifier: ``a`.`b`.`c`` for catalog names, ``delta.`path``` for path-only tables."""
    if _NAME.match(table):
        return ".".join(quote_ident(part) for part in table.split("."))
    path = local_path(location or table)
    if "`" in path or not path:
        raise CachePlanError(f"table {table!r} has no usable name or location for SQL")
    return "delta." + quote_ident(path)


def summarize(accesses: list[Access]) -> list[TableUse]:
    uses: dict[str, TableUse] = {}
    for a in accesses:
        u = uses.setdefault(a.table, TableUse(a.table, a.location, 0, 0))
        u.reads += 1
        u.bytes = max(u.bytes, a.bytes)
    for u in uses.values():  # a cached table holds all of it, not just what one filtered scan read
        u.bytes = max(u.bytes, table_bytes(u.location))
    return sorted(uses.values(), key=lambda u: u.table)


def plan(accesses: list[Access], budget_bytes: int, policy: str = "learned",
         cached_now: Optional[set[str]] = None, databricks: Optional[bool] = None,
         spark_table_cache: bool = True, disk_cache: bool = True) -> CachePlan:
    """The plan for one access log; ``cached_now`` holds the tables cached before it (from state or Spark)."""
    if budget_bytes <= 0:
        raise CachePlanError(f"budget must be positive, got {budget_bytes}")
    if not accesses:
        raise CachePlanError("the access log holds no table reads")
    uses = summarize(accesses)
    by_table = {u.table: u for u in uses}
    cache = policies.make(policy, budget_bytes)
    for a in accesses:
        u = by_table[a.table]
        if u.bytes > 0:
            cache.request(a.table, u.bytes)
    result = CachePlan(budget_bytes, policy, dry_run=True, tables=uses)
    for u in uses:
        u.keep = u.bytes > 0 and u.table in cache
        if u.bytes == 0:
            result.unsized.append(u.table)
    result.kept_bytes = sum(u.bytes for u in uses if u.keep)
    if result.kept_bytes > budget_bytes:  # cannot happen while policies keep their contract; never ship it
        raise CachePlanError(f"policy {policy} kept {result.kept_bytes} bytes over the budget {budget_bytes}")
    wanted = {ActionKind.CACHE_TABLE: spark_table_cache, ActionKind.UNCACHE_TABLE: spark_table_cache,
              ActionKind.DISK_CACHE_WARM: disk_cache}
    on_databricks = is_databricks() if databricks is None else databricks
    result.actions = [a for a in _actions(uses, cached_now or set(), on_databricks) if wanted[a.kind]]
    result.loader_keep = _loader_files([u for u in uses if u.keep])
    return result


def _actions(uses: list[TableUse], cached_now: set[str], databricks: bool) -> list[Action]:
    actions = []
    for u in uses:
        name = sql_name(u.table, u.location)
        if u.keep and u.table not in cached_now:
            actions.append(Action(ActionKind.CACHE_TABLE, u.table, f"CACHE TABLE {name}"))
            actions.append(Action(ActionKind.DISK_CACHE_WARM, u.table, f"CACHE SELECT * FROM {name}",
                                  supported=databricks))
        elif not u.keep and u.table in cached_now:
            actions.append(Action(ActionKind.UNCACHE_TABLE, u.table, f"UNCACHE TABLE IF EXISTS {name}"))
    return actions


def _loader_files(kept: list[TableUse]) -> list[str]:
    files: list[str] = []
    for u in kept:
        try:
            files.extend(sorted(open_table(local_path(u.location)).file_uris()))
        except Exception:  # not a readable Delta table here (remote or gone): nothing for the local loader cache
            continue
    return files


def apply_plan(p: CachePlan, spark, state_path: Optional[Path] = None) -> CachePlan:
    """Runs the supported statements; records the cached tables in ``state_path`` (JSON) when given."""
    for action in p.actions:
        if action.supported:
            spark.sql(action.statement)
            action.applied = True
    p.dry_run = False
    if state_path is not None:
        Path(state_path).write_text(json.dumps({"cached": sorted(u.table for u in p.tables if u.keep),
                                                "loader_keep": p.loader_keep}, indent=1))
    return p


def cached_tables(uses: list[TableUse], spark=None, state_path: Optional[Path] = None) -> set[str]:
    """What is cached now: the state file when given, else what Spark reports as cached."""
    if state_path is not None and Path(state_path).is_file():
        try:
            return set(json.loads(Path(state_path).read_text()).get("cached", []))
        except (ValueError, AttributeError) as e:
            raise CachePlanError(f"{state_path}: not a cache state file: {e}") from None
    if spark is None:
        return set()
    out = set()
    for u in uses:
        try:
            if spark.catalog.isCached(u.table if _NAME.match(u.table) else sql_name(u.table, u.location)):
                out.add(u.table)
        except Exception:  # a table Spark cannot resolve is not cached in this session
            continue
    return out
