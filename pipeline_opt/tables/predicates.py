"""Query predicate logs: which columns queries filter on.

Invariants: a column counts at most once per query; words inside string literals or comments are not column
references; matching is case-insensitive (Spark resolves column names that way by default) and also accepts
backtick-quoted names. Only the text after the last ``WHERE`` of a query counts when it has one, up to the end of
that clause (``GROUP BY``, ``ORDER BY``, ``HAVING``, ``LIMIT`` … name no filter columns).
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from pipeline_opt.errors import PipelineOptError
from pipeline_opt.tables.line_log import read_line_log

_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_TOKEN = re.compile(r"`((?:[^`]|``)+)`|\b([A-Za-z_][A-Za-z0-9_]*)\b")
_WHERE = re.compile(r"\bwhere\b", re.IGNORECASE)
# Where a WHERE clause ends: the columns of a grouping, an ordering or a HAVING filter rows of no file.
_AFTER_WHERE = re.compile(r"\b(?:group\s+by|order\s+by|sort\s+by|cluster\s+by|distribute\s+by|having|qualify|"
                          r"window|limit|union|intersect|except)\b", re.IGNORECASE)


def read_predicate_log(path: str | Path) -> list[str]:
    """Queries or WHERE clauses, one per line (plain text, or JSON lines with ``predicate`` or ``query``)."""
    out = []
    for n, entry in read_line_log(path, "predicate log", ("predicate", "query")):
        if not isinstance(entry, str):
            raise PipelineOptError(f"{path}:{n}: no 'predicate' or 'query' string")
        out.append(entry)
    return out


def filter_counts(predicates: list[str], columns: list[str]) -> Counter:
    """How many predicates reference each of ``columns``."""
    by_lower = {c.lower(): c for c in columns}
    counts: Counter = Counter()
    for text in predicates:
        parts = _WHERE.split(_LITERAL.sub("''", text.split("--")[0]))
        clause = _AFTER_WHERE.split(parts[-1], maxsplit=1)[0] if len(parts) > 1 else parts[-1]
        seen = set()
        for quoted, bare in _TOKEN.findall(clause):
            name = quoted.replace("``", "`") if quoted else bare
            col = by_lower.get(name.lower())
            if col:
                seen.add(col)
        counts.update(seen)
    return counts
