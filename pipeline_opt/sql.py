"""Safe SQL text for Delta tables addressed by path.

Invariants: no user string reaches SQL text unquoted. Identifiers and ``delta.`path``` references are backtick
quoted with embedded backticks doubled (Spark's own escape); control characters are refused outright; partition
filter values are rendered as typed literals from a checked grammar, never pasted.
"""
from __future__ import annotations

import os
import re
from typing import Mapping, Optional

from pipeline_opt.errors import PipelineOptError


class UnsafeNameError(PipelineOptError):
    """A path, column name or filter cannot be turned into safe SQL."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def quote_ident(name: str) -> str:
    """``name`` as one backtick-quoted Spark identifier (``a`b`` → ```a``b```)."""
    if not isinstance(name, str) or not name or _CONTROL.search(name):
        raise UnsafeNameError(f"{name!r} is not a usable identifier (empty or has control characters)")
    return "`" + name.replace("`", "``") + "`"


def delta_ref(path: str) -> str:
    """``delta.`path``` for a table path or URI, quoted so the path is one identifier whatever it contains.

    A relative local path is made absolute: Delta only reads ``delta.`x``` as a path when it is absolute.
    """
    path = str(path)
    if "://" not in path:
        path = os.path.abspath(path)
    return "delta." + quote_ident(path)


def sql_literal(value: Optional[str]) -> str:
    """A string literal with quotes and backslashes escaped (or ``NULL``)."""
    if value is None:
        return "NULL"
    if _CONTROL.search(str(value)):
        raise UnsafeNameError(f"{value!r} has control characters")
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def partition_predicate(values: Mapping[str, Optional[str]]) -> str:
    """``col = 'v' AND …`` (``IS NULL`` for null) matching exactly one partition; names and values quoted."""
    if not values:
        raise UnsafeNameError("an empty partition has no predicate")
    parts = [f"{quote_ident(c)} IS NULL" if v is None else f"{quote_ident(c)} = {sql_literal(v)}"
             for c, v in values.items()]
    return " AND ".join(parts)
