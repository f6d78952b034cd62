"""One reference to a Delta table, whether the user gave a path or a catalog name.

Invariants: a catalog name (``db.t``, ``cat.db.t``, backquoted parts) is resolved once, through the session's catalog
(``DESCRIBE DETAIL``), into a ``TableRef`` holding both the quoted name and the table's location; Spark SQL then
addresses the table by its name (Unity Catalog refuses path access to managed tables), while the Delta-log reader
and the loader read its location. A name that does not exist, a view and a non-Delta table each raise one named
error before anything is read or written. A path reference is the path itself, addressed as ``delta.`path```.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from pipeline_opt.delta.paths import BadTablePathError, check_table_path
from pipeline_opt.errors import NotADeltaTableError, TableNotFoundError
from pipeline_opt.sql import delta_ref, quote_name, split_name

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a part shown without backquotes


class BadTableNameError(BadTablePathError):
    """A table name that is ambiguous or cannot be a catalog name."""


@dataclass(frozen=True)
class TableRef:
    """``location``: the table's folder or URI (log reader, loader); ``name``: its catalog name parts, if named."""

    location: str
    name: Optional[tuple[str, ...]] = None

    @property
    def sql(self) -> str:
        """The table in SQL text: its quoted catalog name, else ``delta.`location```."""
        return quote_name(self.name) if self.name else delta_ref(self.location)

    @property
    def label(self) -> str:
        """How results and messages name the table: the catalog name as written in SQL, else the location."""
        return ".".join(p if _PLAIN.fullmatch(p) else f"`{p.replace('`', '``')}`"
                        for p in self.name) if self.name else self.location

    def select(self, version: Optional[int] = None) -> str:
        """``SELECT *`` of the table at ``version`` (Delta time travel; the latest version when None)."""
        at = "" if version is None else f" VERSION AS OF {int(version)}"
        return f"SELECT * FROM {self.sql}{at}"

    def with_location(self, location: str) -> "TableRef":
        return TableRef(location, self.name)

    def __str__(self) -> str:
        return self.label


TableLike = Union[str, Path, TableRef]


def table_ref(table: TableLike) -> TableRef:
    """``table`` as a reference: a ``TableRef`` as it is, a path (already checked by the caller) as a path ref."""
    return table if isinstance(table, TableRef) else TableRef(str(table))


def is_table_name(text: str) -> bool:
    """True when ``text`` reads as a catalog name rather than a path (see ``sql.split_name``)."""
    return split_name(str(text)) is not None


def resolve_table(spark, text: TableLike) -> TableRef:
    """A checked reference for a path (no Spark needed) or a catalog name (one ``DESCRIBE DETAIL``)."""
    if isinstance(text, TableRef):
        return text
    parts = split_name(str(text))
    if parts is None:
        return TableRef(check_table_path(text))
    if Path(str(text)).expanduser().is_dir():
        raise BadTableNameError(f"{text!r} is both a folder here and a catalog table name: write ./{text} for the "
                                f"folder, or {quote_name(parts)} for the table")
    if spark is None:
        raise BadTableNameError(f"{text}: a catalog table name needs a Spark session to resolve it")
    return TableRef(_location(spark, parts), parts)


def _location(spark, parts: tuple[str, ...]) -> str:
    label = ".".join(parts)
    try:
        detail = spark.sql(f"DESCRIBE DETAIL {quote_name(parts)}").collect()[0].asDict()
    except Exception as e:  # Spark's errors arrive as JVM or Connect exceptions; name the user-caused ones
        raise _named_error(label, e) from None
    fmt = str(detail.get("format") or "").lower()
    if fmt != "delta":
        raise NotADeltaTableError(f"{label}: a {fmt or 'non-Delta'} table, not a Delta table")
    if not detail.get("location"):
        raise NotADeltaTableError(f"{label}: the catalog gives no location for this table")
    return local_location(str(detail["location"]))


def _named_error(label: str, error: Exception) -> Exception:
    text = str(error)
    if "TABLE_OR_VIEW_NOT_FOUND" in text or "SCHEMA_NOT_FOUND" in text or "NoSuchTable" in text \
            or "not found" in text.lower() or "cannot be found" in text:
        return TableNotFoundError(f"{label}: no such table in the catalog")
    if "EXPECT_TABLE_NOT_VIEW" in text or "is a view" in text.lower():
        return NotADeltaTableError(f"{label}: a view, not a Delta table (name the table it reads)")
    if "DELTA_MISSING_DELTA_TABLE" in text or "not a Delta table" in text:
        return NotADeltaTableError(f"{label}: not a Delta table")
    return error


def local_location(location: str) -> str:
    """A catalog location as the log reader takes it: ``file:/x`` and ``file:///x`` become ``/x``; URIs stay."""
    if location.startswith("file:"):
        return "/" + location[len("file:"):].lstrip("/")
    return location
