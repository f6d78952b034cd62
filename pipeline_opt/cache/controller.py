"""Which tables stay cached under a byte budget, and the actions that get there.

Invariants:
- the kept tables' bytes never exceed the budget (each policy counts its metadata inside its capacity, and the plan
  re-checks the sum);
- the plan is a pure function of the access log, the budget, the policy and the current cache state: planning twice
  gives the same plan, and applying a plan twice runs its statements once (the second run finds nothing to change);
- dry run by default: nothing runs unless ``apply=True``;
- table names are validated and quoted with backticks; a location must not contain a backtick.

With the ``planned`` policy the decision uses the known future: ``forecast`` gives each table's expected reads within
the horizon (from the job schedule, else from its recurrence in the log); keeping a table saves ``reads × bytes``
of storage reads, minus one read to fill the cache when it is not cached yet; tables are kept by saved bytes per
budget byte (and the best single table, if that saves more) until the budget is full; pinned tables are kept first,
excluded tables never. Every table reports what keeping it saves. With any other policy name the access log is
replayed (one request per table read, sized by the table) through that registered policy with the budget as its
capacity; the tables it holds at the end stay hot. Actions: Spark ``CACHE TABLE`` /
``UNCACHE TABLE``, Databricks disk-cache warming (``CACHE SELECT``, only where the Databricks runtime is present),
and the loader's local file-cache keep list (the kept tables' live files, from their Delta logs).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Optional, Sequence

from pipeline_opt.cache import policies
from pipeline_opt.cache.access_log import Access, local_path, table_bytes
from pipeline_opt.cache.forecast import ScheduledRead, forecast
from pipeline_opt.cache.knapsack import choose_by_forecast
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
    predicted_reads: Optional[float] = None  # within the horizon (planned decisions only)
    saved_bytes: Optional[int] = None  # storage bytes keeping it saves within the horizon
    reason: str = ""


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
    horizon_hours: Optional[float] = None
    saved_bytes: Optional[int] = None  # total over the kept tables (planned decisions only)


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
         spark_table_cache: bool = True, disk_cache: bool = True, horizon_hours: float = 24.0,
         schedule: Sequence[ScheduledRead] = (), pins: Sequence[str] = (),
         exclusions: Sequence[str] = ()) -> CachePlan:
    """The plan for one access log; ``cached_now`` holds the tables cached before it (from state or Spark)."""
    if budget_bytes <= 0:
        raise CachePlanError(f"budget must be positive, got {budget_bytes}")
    if not accesses:
        raise CachePlanError("the access log holds no table reads")
    uses = summarize(accesses)
    known = {u.table for u in uses}
    uses += [TableUse(s.table, s.location, table_bytes(s.location), 0) for s in schedule
             if s.table not in known and s.location]  # scheduled, not in the log yet: sized from its Delta log
    result = CachePlan(budget_bytes, policy, dry_run=True, tables=uses)
    if policy == "planned":
        result.horizon_hours = horizon_hours
        result.saved_bytes = choose_by_forecast(uses, forecast(accesses, horizon_hours, schedule), budget_bytes,
                                                cached_now or set(), pins, exclusions)
    else:
        _choose_by_replay(accesses, uses, budget_bytes, policy)
    result.unsized = [u.table for u in uses if u.bytes == 0]
    result.kept_bytes = sum(u.bytes for u in uses if u.keep)
    if result.kept_bytes > budget_bytes:  # cannot happen while policies keep their contract; never ship it
        raise CachePlanError(f"policy {policy} kept {result.kept_bytes} bytes over the budget {budget_bytes}")
    wanted = {ActionKind.CACHE_TABLE: spark_table_cache, ActionKind.UNCACHE_TABLE: spark_table_cache,
              ActionKind.DISK_CACHE_WARM: disk_cache}
    on_databricks = is_databricks() if databricks is None else databricks
    result.actions = [a for a in _actions(uses, cached_now or set(), on_databricks) if wanted[a.kind]]
    result.loader_keep = _loader_files([u for u in uses if u.keep])
    return result


def _choose_by_replay(accesses: list[Access], uses: list[TableUse], budget_bytes: int, policy: str) -> None:
    by_table = {u.table: u for u in uses}
    cache = policies.make(policy, budget_bytes)
    for a in accesses:
        u = by_table[a.table]
        if u.bytes > 0:
            cache.request(a.table, u.bytes)
    for u in uses:
        u.keep = u.bytes > 0 and u.table in cache


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
        return _state_tables(Path(state_path))
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


def _state_tables(path: Path) -> set[str]:
    """The tables a state file (``{"cached": [table, ...]}``, as ``apply_plan`` writes it) names."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise CachePlanError(f"{path}: not a cache state file: not UTF-8 text (byte {e.start})") from None
    except (ValueError, RecursionError) as e:
        raise CachePlanError(f"{path}: not a cache state file: not JSON ({' '.join(str(e).split())[:80]})") from None
    cached = data.get("cached", []) if isinstance(data, dict) else None
    # a string must not pass as a list: set("t1") would be the tables "t" and "1"
    if not isinstance(cached, list) or not all(isinstance(t, str) and t for t in cached):
        raise CachePlanError(f"{path}: not a cache state file: expected {{\"cached\": [table name, ...]}}, "
                             f"got {str(data)[:60]}")
    return set(cached)


@dataclass
class RatedPlan(CachePlan):
    """A cache plan and what its kept tables would have served of the log it was planned from: ``hit_rate`` (share
    of the log's reads) and ``byte_hit_rate`` (share of the bytes those reads fetched). A kept table that is not
    cached yet misses its first read, which fills it. One measure for every policy, planned or replayed, so a
    candidate policy is judged against the active one on the same reads (the recorder's ``cache.hit_rate``)."""

    hit_rate: Optional[float] = None
    byte_hit_rate: Optional[float] = None


def with_hit_rates(p: CachePlan, cached_now: set[str]) -> RatedPlan:
    reads = read_bytes = hits = hit_bytes = 0
    for u in p.tables:
        reads, read_bytes = reads + u.reads, read_bytes + u.reads * u.bytes
        if u.keep:
            served = max(u.reads - (0 if u.table in cached_now else 1), 0)
            hits, hit_bytes = hits + served, hit_bytes + served * u.bytes
    own = {f.name: getattr(p, f.name) for f in fields(CachePlan) if f.init}
    return RatedPlan(**own, hit_rate=hits / reads if reads else None,
                     byte_hit_rate=hit_bytes / read_bytes if read_bytes else None)
