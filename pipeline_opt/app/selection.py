"""Which tables a job acts on: one table path, or the tables of ``conf/tables.yml``.

Invariants: a job gets either a path or a config, never both; with a config, ``--table`` picks tables by name (all
when absent) and relative paths resolve against ``--base-dir`` when given (a storage URI on Databricks), else
against the current directory; every chosen path is checked before the first table is touched. S3 tables get
their storage options from the one ``ObjectStore`` of the environment, and a job that commits to one holds its
writer lease (``writing``) whichever way the job was started.
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from pipeline_opt.config import load
from pipeline_opt.delta import check_table_path
from pipeline_opt.errors import ConfigError, PipelineOptError
from pipeline_opt.output import render, to_jsonable
from pipeline_opt.storage import ObjectStore, check_spark_write, for_engine, scheme_of, single_writer
from pipeline_opt.tables.settings import TablesConfig, TableSettings


@dataclass
class Chosen:
    """The config (defaults only for a single path) and the chosen tables with checked paths."""

    config: TablesConfig
    tables: list[TableSettings]
    from_config: bool


def choose_tables(args, *, needs_path: bool = True) -> Chosen:
    """From ``args.path`` or ``args.config`` (+ ``args.table``, ``args.base_dir``)."""
    path, config_path = getattr(args, "path", None), getattr(args, "config", None)
    if bool(path) == bool(config_path):
        raise PipelineOptError("give a table path or --config, not both" if path else "give a table path or --config")
    if path:
        if getattr(args, "table", None):
            raise ConfigError("--table needs --config")
        table = TableSettings(name=str(path).rstrip("/").rsplit("/", 1)[-1] or str(path), path=str(path))
        return Chosen(TablesConfig(), [_checked(table, needs_path)], False)
    assert config_path  # exactly one of path and config_path is set (checked above)
    config = load(config_path, TablesConfig)
    try:
        chosen = config.chosen(getattr(args, "table", None))
    except ConfigError as e:
        raise ConfigError(f"{config_path}: {e}") from None
    base = getattr(args, "base_dir", None)
    if base:
        chosen = [dataclasses.replace(t, path=_join(base, t.path)) for t in chosen]
    return Chosen(config, [_checked(t, needs_path) for t in chosen], True)


def _checked(table: TableSettings, needs_path: bool) -> TableSettings:
    return dataclasses.replace(table, path=check_table_path(table.path)) if needs_path else table


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
