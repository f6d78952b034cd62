"""Opening a Delta table with delta-rs (no JVM), with clear errors.

Invariant: never lists storage to find data files; the snapshot's files come from the Delta log only.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping, Optional

from pipeline_opt.delta.paths import check_local_table, is_remote
from pipeline_opt.errors import DeltaLogError, NotADeltaTableError


def open_table(path: str | Path, version: Optional[int] = None,
               storage_options: Optional[Mapping[str, str]] = None):
    """A ``deltalake.DeltaTable`` at ``version`` (latest when None)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError
    from deltalake.exceptions import TableNotFoundError as RsNotFound

    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 0):
        raise DeltaLogError(f"{path}: version must be a non-negative integer, got {version!r}")
    uri = str(path) if is_remote(str(path)) else str(check_local_table(path))
    try:
        return DeltaTable(uri, version=version, storage_options=dict(storage_options or {}) or None)
    except RsNotFound:
        if version is not None and is_delta_table(uri, storage_options):
            raise DeltaLogError(f"{path}: version {version} cannot be read (its commits are gone)") from None
        raise NotADeltaTableError(f"{path}: not a Delta table") from None
    except DeltaError as e:  # delta-rs reports a bad version or an unreadable log as its generic error
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        if version is not None and "version" in first.lower():
            raise DeltaLogError(f"{path}: version {version} does not exist ({first})") from None
        recovered = _without_hint(path, uri, version, storage_options)
        if recovered is not None:
            return recovered
        damage = _damage(uri, storage_options)
        if damage:
            raise DeltaLogError(f"{path}: the Delta log is damaged: {damage}") from None
        raise DeltaLogError(f"{path}: the Delta log cannot be read ({first})") from None


def _without_hint(path, uri: str, version: Optional[int], storage_options: Optional[Mapping[str, str]]):
    """The table read as Spark reads it when ``_last_checkpoint`` names a missing checkpoint (``delta.recovery``),
    with one warning; None when that is not the damage or the replay is impossible."""
    from deltalake.exceptions import DeltaError

    from pipeline_opt.delta.recovery import open_without_hint

    try:
        opened = open_without_hint(uri, version, storage_options)
    except (OSError, DeltaError):
        return None
    if opened is None:
        return None
    table, hinted = opened
    warnings.warn(f"{path}: checkpoint {hinted} named by _last_checkpoint is missing; read by replaying the JSON "
                  "commits, as Spark does", stacklevel=3)
    return table


def _damage(uri: str, storage_options: Optional[Mapping[str, str]]) -> Optional[str]:
    """The named damage of a log delta-rs refused (``log.describe_damage``), or None when it cannot tell."""
    from pipeline_opt.delta.fs import resolve
    from pipeline_opt.delta.log import describe_damage

    try:
        fs, root = resolve(uri, storage_options)
        return describe_damage(fs, root.rstrip("/") + "/_delta_log")
    except (OSError, DeltaLogError):  # the diagnosis is a courtesy: the reader's own error still stands
        return None


def is_delta_table(uri: str, storage_options: Optional[Mapping[str, str]] = None) -> bool:
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(uri, storage_options=dict(storage_options or {}) or None)


def operation_versions(path: str | Path, operation: str, storage_options: Optional[Mapping[str, str]] = None
                       ) -> list[int]:
    """Versions whose commit ran ``operation`` (e.g. ``OPTIMIZE``), oldest first."""
    history = open_table(path, storage_options=storage_options).history()
    return sorted(int(h["version"]) for h in history if h.get("operation") == operation)
