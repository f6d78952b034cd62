"""Checking a table path before any SQL or Spark job touches it.

Invariant: a path that passes is either a local folder holding a ``_delta_log`` (returned absolute) or a storage
URI (``s3://``, ``abfss://``, ``dbfs:/`` …) without control characters; anything else raises one named error that
names the path, before Spark starts work on it.
"""
from __future__ import annotations

import re

from pipeline_opt.deltatable import check_local_table, is_remote
from pipeline_opt.errors import PipelineOptError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")


class BadTablePathError(PipelineOptError):
    """The table path is empty or has characters no storage path has."""


def check_table_path(path: str) -> str:
    """The checked path: absolute for a local table, unchanged for a storage URI."""
    text = str(path)
    if not text.strip() or _CONTROL.search(text):
        raise BadTablePathError(f"{path!r} is not a usable table path")
    if is_remote(text) or (_URI.match(text) and not text.startswith("file:")):
        return text
    return str(check_local_table(text))
