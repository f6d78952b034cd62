"""A partition filter such as ``year >= 1995 AND region IN ('EU', 'US')``, parsed and checked, never pasted into SQL.

Invariants: the text must match a small grammar (``col OP literal``, ``col IN (…)``, ``col IS [NOT] NULL``, joined by
``AND``); columns must be partition columns; it is evaluated in Python against partition values, so no part of it
ever reaches Spark as text (the executor addresses partitions by their own quoted values).
"""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Optional, Sequence

from pipeline_opt.errors import PipelineOptError


class PartitionFilterError(PipelineOptError):
    """The partition filter is malformed or names a column that is not a partition column."""


_LIT = r"'(?:[^'\\]|\\.)*'|-?\d+(?:\.\d+)?"
_COND = re.compile(
    rf"\s*(?P<col>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)\s*(?:"
    rf"(?P<op><=|>=|!=|<>|=|<|>)\s*(?P<lit>{_LIT})"
    rf"|(?P<isnull>IS\s+(?:NOT\s+)?NULL)"
    rf"|IN\s*\((?P<list>\s*(?:{_LIT})(?:\s*,\s*(?:{_LIT}))*)\s*\))\s*$",
    re.IGNORECASE)
_OPS = {"=": operator.eq, "!=": operator.ne, "<>": operator.ne, "<": operator.lt, "<=": operator.le,
        ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Condition:
    column: str
    op: str  # one of _OPS, "in", "is null", "is not null"
    values: tuple[str, ...] = ()

    def matches(self, value: Optional[str]) -> bool:
        if self.op in ("is null", "is not null"):
            return (value is None) == (self.op == "is null")
        if value is None:
            return False
        if self.op == "in":
            return any(_compare(value, v, operator.eq) for v in self.values)
        return _compare(value, self.values[0], _OPS[self.op])


@dataclass(frozen=True)
class PartitionFilter:
    text: str
    conditions: tuple[Condition, ...]

    @classmethod
    def parse(cls, text: str) -> "PartitionFilter":
        if not text or not text.strip():
            raise PartitionFilterError("empty partition filter")
        parts = re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE)
        return cls(text, tuple(_condition(p, text) for p in parts))

    def check_columns(self, partition_columns: Sequence[str]) -> None:
        lowered = {c.lower() for c in partition_columns}
        for c in self.conditions:
            if c.column.lower() not in lowered:
                raise PartitionFilterError(f"partition filter {self.text!r}: {c.column!r} is not a partition "
                                           f"column; partition columns: {partition_columns or 'none'}")

    def matches(self, values: dict[str, Optional[str]]) -> bool:
        by_lower = {k.lower(): v for k, v in values.items()}
        return all(c.matches(by_lower.get(c.column.lower())) for c in self.conditions)


def _condition(part: str, text: str) -> Condition:
    m = _COND.match(part)
    if not m:
        raise PartitionFilterError(f"partition filter {text!r}: cannot read {part.strip()!r}; use col = 'v', "
                                   f"col >= 3, col IN ('a', 'b') or col IS NULL joined by AND")
    col = m["col"].strip("`")
    if m["isnull"]:
        return Condition(col, "is not null" if "NOT" in m["isnull"].upper() else "is null")
    if m["list"] is not None:
        return Condition(col, "in", tuple(_unquote(v) for v in re.findall(_LIT, m["list"])))
    return Condition(col, m["op"], (_unquote(m["lit"]),))


def _unquote(lit: str) -> str:
    return re.sub(r"\\(.)", r"\1", lit[1:-1]) if lit.startswith("'") else lit


def _compare(a: str, b: str, op) -> bool:
    try:
        return op(float(a), float(b))
    except ValueError:
        return op(a, b)
