"""Row filters: pushdown to whole files from the Delta log, then exact row filtering while reading.

Invariants: a file is skipped only when its partition values or its add-action min/max stats prove that no row can
match (stats prune only integer, float, decimal, date and boolean columns, whose stats are exact); every row that
is read is still filtered exactly, so pushdown changes cost, never results. Live row counts under a filter are
exact: files that are not skipped are counted by decoding the filter columns once when the dataset is built.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable, Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline_opt.delta.snapshot import DataFile, Snapshot
from pipeline_opt.loader.errors import LoaderError

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge}


@dataclass
class RowFilter:
    expression: Optional[pc.Expression] = None
    columns: tuple = ()
    dnf: Optional[list] = None  # OR of ANDs of (column, op, value), when given as tuples
    files_skipped: int = 0

    @classmethod
    def build(cls, arg, snapshot: Snapshot) -> "RowFilter":
        if arg is None:
            return cls()
        if isinstance(arg, pc.Expression):
            return cls(expression=arg, columns=_referenced(arg, snapshot))
        dnf = _as_dnf(arg, snapshot)
        return cls(expression=pq.filters_to_expression(dnf),
                   columns=tuple(dict.fromkeys(c for b in dnf for c, _, _ in b)), dnf=dnf)

    def describe(self) -> str:
        """A stable text form, recorded in loader state dicts."""
        if self.expression is None:
            return ""
        return repr(self.dnf) if self.dnf is not None else str(self.expression)

    def live_rows(self, snapshot: Snapshot, make_reader) -> list:
        """Live rows per file after deletion vectors and this filter."""
        if self.expression is None:
            return [f.live_rows for f in snapshot.files]
        counter = None
        counts = []
        for i, f in enumerate(snapshot.files):
            if f.live_rows == 0 or not self._may_match(f, snapshot):
                self.files_skipped += int(f.live_rows > 0)
                counts.append(0)
                continue
            counter = counter or make_reader(columns=list(self.columns))
            counts.append(counter.count(i))
        return counts

    def _may_match(self, f: DataFile, snapshot: Snapshot) -> bool:
        if self.dnf is not None:
            return any(all(_conjunct_may_match(f, snapshot, c, op, v) for c, op, v in branch) for branch in self.dnf)
        if set(self.columns) <= set(snapshot.partition_columns):
            one_row = pa.table({c: pa.array([f.partition.get(c)], snapshot.schema.field(c).type)
                                for c in snapshot.partition_columns})
            return one_row.filter(self.expression).num_rows > 0
        return True


def _referenced(expr: pc.Expression, snapshot: Snapshot) -> tuple:
    """Columns the expression reads (a column is needed when evaluating without it fails)."""
    empty = snapshot.schema.empty_table()
    try:
        empty.filter(expr)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise LoaderError(f"filter {expr} does not apply to {snapshot.uri}: {e}") from None
    needed = []
    for name in snapshot.schema.names:
        try:
            empty.drop_columns([name]).filter(expr)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            needed.append(name)
    return tuple(needed)


def _as_dnf(arg, snapshot: Snapshot) -> list:
    if not isinstance(arg, (list, tuple)) or not arg:
        raise LoaderError(f"filter must be a pyarrow Expression or [(column, op, value), ...], got {arg!r}")
    branches = [arg] if isinstance(arg[0], tuple) else arg
    out = []
    for branch in branches:
        conj = []
        for term in branch:
            if not (isinstance(term, (list, tuple)) and len(term) == 3):
                raise LoaderError(f"filter term must be (column, op, value), got {term!r}")
            col, op, value = term
            if col not in snapshot.schema.names:
                raise LoaderError(f"filter: unknown column {col!r}; the table has {snapshot.schema.names}")
            if op not in (*_OPS, "in", "not in"):
                raise LoaderError(f"filter: unknown operator {op!r} in {term!r}")
            conj.append((col, op, value))
        out.append(conj)
    return out


def _exact_stats(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) \
        or pa.types.is_date(t) or pa.types.is_boolean(t)


def _conjunct_may_match(f: DataFile, snapshot: Snapshot, col: str, op: str, value) -> bool:
    try:
        if col in snapshot.partition_columns:
            v = f.partition.get(col)
            if v is None:
                return False  # comparisons with null are never true
            if op == "in":
                return v in value
            if op == "not in":
                return v not in value
            return bool(_OPS[op](v, value))
        if col not in f.stats or not _exact_stats(snapshot.schema.field(col).type):
            return True
        lo, hi = f.stats[col]
        if op in ("=", "=="):
            return lo <= value <= hi
        if op == "in":
            return any(lo <= v <= hi for v in value)
        return {"<": lo < value, "<=": lo <= value, ">": hi > value, ">=": hi >= value}.get(op, True)
    except TypeError:  # a value of another type: let the exact row filter decide
        return True
