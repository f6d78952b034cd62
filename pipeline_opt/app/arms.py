"""What the A/B split of a rollout hashes for a job run: its unit, and in a run over several tables each table.

Invariants: a run's unit is stable from night to night for the same scheduled job — the table it acts on, else its
access log, else its config file (a run given none of them is its own unit); in a run over several tables each
table is a unit of its own, so it has its own arm and its own values of the settings under rollout, and a job over
several tables takes each table's arguments from ``for_table``; a run over one table, or one not monitored, gets
its own arguments back.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

PER_TABLE = "_for_table"  # attribute of a monitored job's arguments: table name → that table's arguments


def for_table(args: Any, name: str) -> Any:
    """The job's arguments for table ``name``."""
    tables = getattr(args, PER_TABLE, None)
    return tables(name) if tables is not None else args


def attach(args: Any, table_args: Callable[[str], Any]) -> Any:
    """``args`` that answer ``for_table`` through ``table_args``."""
    try:
        setattr(args, PER_TABLE, table_args)
    except AttributeError:  # arguments that take no attributes: every table runs on the run's own
        pass
    return args


def unit_of(given: Mapping[str, Any]) -> str:
    """The run's unit: the last part of its table, access log or config file; "" when it names none."""
    for key in ("path", "table", "log", "config"):
        value = given.get(key)
        if isinstance(value, (list, tuple)):  # one table chosen from a config is that table; several are not one
            value = value[0] if len(value) == 1 else None
        if value:
            return name_of(str(value))
    return ""


def name_of(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1] if "/" in location else location
