"""Safe SQL text for Delta tables addressed by path or by catalog name.

Invariants: no user string reaches SQL text unquoted. Identifiers, catalog names and ``delta.`path``` references are
backtick quoted with embedded backticks doubled (Spark's own escape); control characters are refused outright; a
catalog name is split by one grammar (``split_name``), so ``db.t``, ``cat.db.t`` and backquoted parts mean what
Spark means by them; partition filter values are rendered as typed literals from a checked grammar, never pasted.
"""
from __future__ import annotations

import os
import re
from typing import Mapping, Optional, Sequence

from pipeline_opt.errors import PipelineOptError


class UnsafeNameError(PipelineOptError):
    """A path, column name or filter cannot be turned into safe SQL."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def quote_ident(name: str) -> str:
    """``name`` as one backtick-quoted Spark identifier (``a`b`` → ```a``b```)."""
    if not isinstance(name, str) or not name or _CONTROL.search(name):
        raise UnsafeNameError(f"{name!r} is not a usable identifier (empty or has control characters)")
    return "`" + name.replace("`", "``") + "`"


# One part of a multi-part name: backquoted (doubled backticks inside) or a plain identifier of letters, digits, '_'.
_NAME_PART = re.compile(r"`((?:[^`]|``)+)`|([A-Za-z0-9_]+)")


def split_name(text: str) -> Optional[tuple[str, ...]]:
    """The parts of a catalog table name (``db.t``, ``cat.db.t``, backquoted parts), or None when ``text`` is not
    one: a single plain word is a relative path, as is anything with a ``/`` outside backquotes."""
    text = str(text).strip()
    parts: list[str] = []
    pos, quoted = 0, False
    while True:
        m = _NAME_PART.match(text, pos)
        if not m:
            return None
        quoted = quoted or m.group(1) is not None
        parts.append(m.group(1).replace("``", "`") if m.group(1) is not None else m.group(2))
        pos = m.end()
        if pos == len(text):
            break
        if text[pos] != ".":
            return None
        pos += 1
    if not 1 <= len(parts) <= 3 or (len(parts) == 1 and not quoted) or any(_CONTROL.search(p) for p in parts):
        return None
    return tuple(parts)


def quote_name(parts: Sequence[str]) -> str:
    """A multi-part name as SQL text, every part quoted (``("main", "my-db", "t")`` → ```main`.`my-db`.`t```)."""
    if not parts:
        raise UnsafeNameError("an empty table name")
    return ".".join(quote_ident(p) for p in parts)


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
