"""Opening a Delta table by path without a JVM (delta-rs), with clear errors.

Invariant: never lists storage to find data files; the snapshot's files come from the Delta log only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional

from pipeline_opt.errors import NotADeltaTableError, PipelineOptError, TableNotFoundError


def is_remote(path: str) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def check_local_table(path: str | Path) -> Path:
    """Return the local table folder, or raise if it is missing or holds no ``_delta_log``."""
    p = Path(str(path).removeprefix("file://")).expanduser()
    if not p.exists():
        raise TableNotFoundError(f"{path}: no such path")
    if not (p / "_delta_log").is_dir():
        raise NotADeltaTableError(f"{path}: not a Delta table (no _delta_log folder)")
    return p.resolve()


def open_table(path: str | Path, version: Optional[int] = None,
               storage_options: Optional[Mapping[str, str]] = None):
    """A ``deltalake.DeltaTable`` at ``version`` (latest when None)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError as RsNotFound

    uri = str(path) if is_remote(str(path)) else str(check_local_table(path))
    try:
        return DeltaTable(uri, version=version, storage_options=dict(storage_options or {}) or None)
    except RsNotFound:
        raise NotADeltaTableError(f"{path}: not a Delta table") from None
    except Exception as e:  # delta-rs reports a bad version or unreadable log as a generic error
        if version is not None and "version" in str(e).lower():
            raise PipelineOptError(f"{path}: version {version} does not exist ({str(e)[:200]})") from None
        raise
