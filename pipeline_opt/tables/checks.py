"""What a rewrite must not change, and the five checks that compare it: fingerprints of two table versions.

Invariants: read-only, and no table is scanned here: every check reads the two fingerprints only (the suite's
frames are built from them). A fingerprint holds the row count, the ordered columns with their Spark types,
per-column null counts and checksums (``None`` when not computed: a first pass hashes whole rows only), and a
whole-row checksum; ``compare`` passes exactly when the row count, the ordered column list and every column's type,
null count and checksum (and the whole-row checksum) are equal, a checksum missing on both sides counting as equal.
The checks run as a Great Expectations 1.x suite when great_expectations is installed; without it (Databricks
Runtime 15.4 pins pydantic 1.10.6, which great_expectations 1.x refuses) the same five checks run built in, worded
the same way.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

from pipeline_opt.errors import require


@dataclass
class ColumnFingerprint:
    name: str
    type: str
    nulls: int
    checksum: Optional[int] = None  # None: not computed (whole-row pass only)


@dataclass
class TableFingerprint:
    version: int
    rows: int
    row_checksum: int
    columns: list[ColumnFingerprint] = field(default_factory=list)

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def compare(spark, expected: TableFingerprint, actual: TableFingerprint, after_df=None
            ) -> tuple[list[str], int, str]:
    """(failure descriptions, number of checks, engine) for ``actual`` against ``expected``. ``after_df`` is
    accepted for old callers and not read: the row count and column list come from ``actual``, not from a scan."""
    if importlib.util.find_spec("great_expectations") is None:
        failures, checks = _builtin_checks(expected, actual)
        return failures, checks, "builtin"
    failures, checks = _run_suite(_comparison_frame(expected, actual), _columns_frame(actual), expected)
    return failures, checks, "great_expectations"


def _pairs(expected: TableFingerprint, actual: TableFingerprint) -> list[tuple]:
    """One row per column (plus ``*`` for whole rows): before and after type, null count and checksum, and the
    table's row counts (on every row, so the suite checks them as one more column pair)."""
    after = {c.name: c for c in actual.columns}
    rows: list[tuple] = [("*", "row", "row", expected.rows, actual.rows, expected.row_checksum, actual.row_checksum)]
    for c in expected.columns:
        a = after.get(c.name)
        rows.append((c.name, c.type, a.type if a else "<missing>", c.nulls, a.nulls if a else -1,
                     c.checksum, a.checksum if a else -1))
    return [(*r, expected.rows, actual.rows) for r in rows]


def _builtin_checks(expected: TableFingerprint, actual: TableFingerprint) -> tuple[list[str], int]:
    failures = []
    if actual.rows != expected.rows:
        failures.append(_row_count_failure(expected.rows, actual.rows))
    if actual.column_names() != expected.column_names():
        failures.append(f"expect_table_columns_to_match_ordered_list {{'column_list': {expected.column_names()}}} "
                        f"failed (observed {actual.column_names()!r})")
    pairs = _pairs(expected, actual)
    for kind, (i, j) in {"type": (1, 2), "nulls": (3, 4), "checksum": (5, 6)}.items():
        bad = [f"{p[0]}: {p[i]} != {p[j]}" for p in pairs if p[i] != p[j]]
        if bad:
            failures.append(f"{kind} differs: " + "; ".join(bad))
    return failures, 5


def _row_count_failure(expected: int, observed: int) -> str:
    return f"expect_table_row_count_to_equal {{'value': {expected}}} failed (observed {observed!r})"


_NUMBERS = ("nulls_before", "nulls_after", "checksum_before", "checksum_after", "rows_before", "rows_after")


def _comparison_frame(expected: TableFingerprint, actual: TableFingerprint):
    """The pairs as a pandas frame: a few dozen rows, which GX's pandas engine checks in-process (its Spark engine
    would run a Spark job per metric). Numbers are nullable 64-bit integers: exact below 2⁶³, unlike floats."""
    import pandas as pd

    frame = pd.DataFrame(_pairs(expected, actual), columns=["column", "type_before", "type_after", *_NUMBERS[:4],
                                                            *_NUMBERS[4:]])
    return frame.astype({c: "Int64" for c in _NUMBERS})


def _columns_frame(actual: TableFingerprint):
    """An empty frame whose columns are the after-version's, in order: what the column-list check reads."""
    import pandas as pd

    return pd.DataFrame(columns=actual.column_names())


def warm_up() -> None:
    """Start importing great_expectations on a background thread: the import takes seconds (minutes on a loaded
    machine), and a rewrite that runs meanwhile in the JVM hides it, so the first verification does not wait."""
    if importlib.util.find_spec("great_expectations") is not None:
        threading.Thread(target=_import_suite, name="pipeline_opt-gx-import", daemon=True).start()


def _import_suite() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations.expectations  # noqa: F401  (the import is the point)


def _run_suite(comparison, columns, expected: TableFingerprint) -> tuple[list[str], int]:
    """Validate with Great Expectations 1.x; returns (failure descriptions, number of checks)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    gx = require("great_expectations", "verify")
    gxe = require("great_expectations.expectations", "verify")
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # GX draws a tqdm bar per metric batch on stderr; a job's console shows our progress lines only.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas("pipeline_opt_verify")
    suites: dict[str, tuple[Any, list[Any]]] = {
        "table": (columns, [gxe.ExpectTableColumnsToMatchOrderedList(column_list=expected.column_names())]),
        "columns": (comparison, [gxe.ExpectColumnPairValuesToBeEqual(column_A=f"{k}_before", column_B=f"{k}_after")
                                 for k in ("rows", "type", "nulls", "checksum")]),
    }
    failures, checks = [], 0
    for name, (df, expectations) in suites.items():
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        suite = context.suites.add(gx.ExpectationSuite(name=f"rewrite_{name}", expectations=expectations))
        vd = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        result = vd.run(batch_parameters={"dataframe": df}, result_format="COMPLETE")
        for r in result.results:
            checks += 1
            if not r.success:
                failures.append(_describe(r, comparison, expected))
    return failures, checks


def _describe(r, comparison, expected: TableFingerprint) -> str:
    cfg = r.expectation_config
    kind, kwargs = cfg.type, {k: v for k, v in cfg.kwargs.items() if k != "batch_id"}
    if kind == "expect_column_pair_values_to_be_equal":
        a, b = kwargs["column_A"], kwargs["column_B"]
        bad = [row for row in comparison.to_dict("records") if _value(row[a]) != _value(row[b])]
        if a == "rows_before":
            return _row_count_failure(expected.rows, _value(bad[0][b]) if bad else expected.rows)
        return f"{a.removesuffix('_before')} differs: " + "; ".join(
            f"{row['column']}: {_value(row[a])} != {_value(row[b])}" for row in bad)
    observed = (r.result or {}).get("observed_value")
    return f"{kind} {kwargs} failed (observed {observed!r})"


def _value(v):
    """A frame cell as Python: pandas' missing value as None, numbers as int."""
    import pandas as pd

    return None if v is None or v is pd.NA else (int(v) if not isinstance(v, str) else v)
