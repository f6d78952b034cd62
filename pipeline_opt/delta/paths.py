"""Checking a table path before anything reads or writes it.

Invariant: a path that passes is either a local folder holding a ``_delta_log`` (returned absolute) or a storage
URI (``s3://``, ``abfss://``, ``dbfs:/`` …) without control characters; anything else raises one named error that
names the path, before Spark or delta-rs starts work on it.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from pipeline_opt.errors import NotADeltaTableError, PipelineOptError, TableNotFoundError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")


class BadTablePathError(PipelineOptError):
    """The table path is empty or has characters no storage path has."""


def is_remote(path: str | Path) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def check_local_table(path: str | Path) -> Path:
    """Return the local table folder, or raise if it is missing or holds no ``_delta_log``."""
    text = str(path)
    if text.startswith("file:"):  # Spark's own forms: file:/abs/path (as VACUUM prints it) and file:///abs/path
        text = unquote(urlparse(text).path)
    p = Path(text).expanduser()
    if not p.exists():
        raise TableNotFoundError(f"{path}: no such path")
    if not (p / "_delta_log").is_dir():
        raise NotADeltaTableError(f"{path}: not a Delta table (no _delta_log folder)")
    return p.resolve()


def check_table_path(path: str | Path) -> str:
    """The checked path: absolute for a local table, unchanged for a storage URI."""
    text = str(path)
    if not text.strip() or _CONTROL.search(text):
        raise BadTablePathError(f"{path!r} is not a usable table path")
    if is_remote(text) or (_URI.match(text) and not text.startswith("file:")):
        return text
    return str(check_local_table(text))
