"""Which tables a job acts on: one table (a path or a catalog name), or the tables of ``conf/tables.yml``.

Invariants: a job gets either a table or a config, never both; with a config, ``--table`` picks tables by name (all
when absent) and relative paths resolve against ``--base-dir`` when given (a storage URI on Databricks), else
against the current directory. A catalog name (``db.t``, ``cat.db.t``, backquoted parts) is resolved once through
Spark's catalog into a ``TableRef`` (SQL uses the name, the log reader the location), so Spark starts only when a
name is given; a name beside ``--base-dir`` is refused, since a catalog name is never under a folder. Every chosen
table is checked before the first is touched. S3 tables get their storage options from the one ``ObjectStore`` of
the environment, and a job that commits to one holds its writer lease (``writing``) however the job was started.
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

from pipeline_opt.config import load
from pipeline_opt.delta import TableRef, is_table_name, resolve_table
from pipeline_opt.errors import ConfigError, PipelineOptError
from pipeline_opt.output import render, to_jsonable
from pipeline_opt.storage import ObjectStore, check_spark_write, for_engine, scheme_of, single_writer
from pipeline_opt.tables.settings import TablesConfig, TableSettings


class BaseDirError(ConfigError):
    """``--base-dir`` given with a catalog table name, which no folder holds."""


@dataclass
class Chosen:
    """The config (defaults only for a single table), the chosen tables and, in the same order, their resolved
    references (``path`` of each ``TableSettings`` is its location)."""

    config: TablesConfig
    tables: list[TableSettings]
    from_config: bool
    refs: list[TableRef] = dataclasses.field(default_factory=list)

    def items(self) -> list[tuple[TableSettings, TableRef]]:
        return list(zip(self.tables, self.refs))


def choose_tables(args, spark: Optional[Callable[[], Any]] = None) -> Chosen:
    """From ``args.path`` or ``args.config`` (+ ``args.table``, ``args.base_dir``); ``spark`` gives the session that
    resolves catalog names (called only when there is one)."""
    path, config_path = getattr(args, "path", None), getattr(args, "config", None)
    if bool(path) == bool(config_path):
        raise PipelineOptError("give a table path or --config, not both" if path else "give a table path or --config")
    base = getattr(args, "base_dir", None)
    if path:
        if getattr(args, "table", None):
            raise ConfigError("--table needs --config")
        _refuse_base_dir(base, str(path), "the table")
        table = TableSettings(name=str(path).rstrip("/").rsplit("/", 1)[-1] or str(path), path=str(path))
        return _resolved(TablesConfig(), [table], False, spark)
    assert config_path  # exactly one of path and config_path is set (checked above)
    config = load(config_path, TablesConfig)
    try:
        chosen = config.chosen(getattr(args, "table", None))
    except ConfigError as e:
        raise ConfigError(f"{config_path}: {e}") from None
    if base:
        for t in chosen:
            _refuse_base_dir(base, t.path, f"table {t.name} of {config_path}")
        chosen = [dataclasses.replace(t, path=_join(base, t.path)) for t in chosen]
    return _resolved(config, chosen, True, spark)


def resolve(text: str, spark: Callable[[], Any]) -> TableRef:
    """One table given as a path (checked without Spark) or a catalog name (resolved through ``spark()``)."""
    return resolve_table(spark() if is_table_name(text) else None, text)


def _refuse_base_dir(base: Optional[str], path: str, what: str) -> None:
    if base and is_table_name(path):
        raise BaseDirError(f"--base-dir {base} resolves relative table paths, but {what} is the catalog table name "
                           f"{path!r}, which Spark's catalog locates: drop --base-dir, or give the table as a path")


def _resolved(config: TablesConfig, tables: list[TableSettings], from_config: bool,
              spark: Optional[Callable[[], Any]]) -> Chosen:
    """Every table checked (paths) or resolved once through the catalog (names) before any is touched."""
    session = spark() if spark is not None and any(is_table_name(t.path) for t in tables) else None
    refs = [resolve_table(session, t.path) for t in tables]
    tables = [dataclasses.replace(t, path=ref.location) for t, ref in zip(tables, refs)]
    return Chosen(config, tables, from_config, refs)


def _join(base: str, path: str) -> str:
    if "://" in path or path.startswith(("/", "dbfs:")):
        return path
    return base.rstrip("/") + "/" + path


def object_store(path: str) -> Optional[ObjectStore]:
    """The environment's object store for an S3 table; None elsewhere."""
    return ObjectStore.from_env() if scheme_of(path) in ("s3", "s3a") else None


def storage_options(path: str) -> Optional[dict]:
    """delta-rs / pyarrow options for an S3 table (from the environment's object store); None elsewhere."""
    store = object_store(path)
    return store.storage_options() if store is not None else None


@contextmanager
def writing(spark, path: str) -> Iterator[None]:
    """The right to commit to the table at ``path``, held around a job's writes: on S3 under the single-writer
    rule the table's writer lease (a second writer is refused), elsewhere nothing is needed."""
    with single_writer(path, object_store(path)):
        check_spark_write(spark, for_engine(path, "spark"))
        yield


class TableResults:
    """One result per configured table, in order: rendered one after another, JSON as a list of objects."""

    def __init__(self, items: list[tuple[str, Any]]):
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def exit_code(self) -> int:
        return max((int(getattr(r, "exit_code", 0) or 0) for _, r in self.items), default=0)

    def to_list(self) -> list[dict]:
        return [{"table": name, **(to_jsonable(r) if not isinstance(r, dict) else r)} for name, r in self.items]

    def render(self) -> str:
        return "\n\n".join(f"table {name}:\n{render(r)}" for name, r in self.items)


def per_table(chosen: Chosen, results: list[Any]) -> Any:
    """A single path's result as it is; a config's as ``TableResults``."""
    if not chosen.from_config:
        return results[0]
    return TableResults([(t.name, r) for t, r in zip(chosen.tables, results)])
