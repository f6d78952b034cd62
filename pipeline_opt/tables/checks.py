"""What a rewrite must not change, and the five checks that compare it: fingerprints of two table versions.

Invariants: read-only; a fingerprint holds the row count, the ordered columns with their Spark types, per-column null
counts and checksums, and a whole-row checksum; ``compare`` passes exactly when the row count, the ordered column
list and every column's type, null count and checksum (and the whole-row checksum) are equal. The checks run as a
Great Expectations 1.x suite when great_expectations is installed; without it (Databricks Runtime 15.4 pins
pydantic 1.10.6, which great_expectations 1.x refuses) the same five checks run built in, worded the same way.
"""
from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from pipeline_opt.errors import require
from pipeline_opt.sql import quote_ident


@dataclass
class ColumnFingerprint:
    name: str
    type: str
    nulls: int
    checksum: int


@dataclass
class TableFingerprint:
    version: int
    rows: int
    row_checksum: int
    columns: list[ColumnFingerprint] = field(default_factory=list)

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def compare(spark, expected: TableFingerprint, actual: TableFingerprint, after_df) -> tuple[list[str], int, str]:
    """(failure descriptions, number of checks, engine) for ``actual`` against ``expected``; ``after_df`` is the
    after-version the suite counts rows of."""
    if importlib.util.find_spec("great_expectations") is None:
        failures, checks = _builtin_checks(expected, actual)
        return failures, checks, "builtin"
    failures, checks = _run_suite(_comparison_frame(spark, expected, actual), after_df, expected)
    return failures, checks, "great_expectations"


def _pairs(expected: TableFingerprint, actual: TableFingerprint) -> list[tuple]:
    """One row per column (plus ``*`` for whole rows): before and after type, null count and checksum."""
    after = {c.name: c for c in actual.columns}
    rows = [("*", "row", "row", expected.rows, actual.rows, expected.row_checksum, actual.row_checksum)]
    for c in expected.columns:
        a = after.get(c.name)
        rows.append((c.name, c.type, a.type if a else "<missing>", c.nulls, a.nulls if a else -1,
                     c.checksum, a.checksum if a else -1))
    return rows


def _builtin_checks(expected: TableFingerprint, actual: TableFingerprint) -> tuple[list[str], int]:
    failures = []
    if actual.rows != expected.rows:
        failures.append(f"expect_table_row_count_to_equal {{'value': {expected.rows}}} failed "
                        f"(observed {actual.rows!r})")
    if actual.column_names() != expected.column_names():
        failures.append(f"expect_table_columns_to_match_ordered_list {{'column_list': {expected.column_names()}}} "
                        f"failed (observed {actual.column_names()!r})")
    pairs = _pairs(expected, actual)
    for kind, (i, j) in {"type": (1, 2), "nulls": (3, 4), "checksum": (5, 6)}.items():
        bad = [f"{p[0]}: {p[i]} != {p[j]}" for p in pairs if p[i] != p[j]]
        if bad:
            failures.append(f"{kind} differs: " + "; ".join(bad))
    return failures, 5


def _comparison_frame(spark, expected: TableFingerprint, actual: TableFingerprint):
    schema = ("column string, type_before string, type_after string, nulls_before long, nulls_after long, "
              "checksum_before long, checksum_after long")
    return spark.createDataFrame(_pairs(expected, actual), schema)


def _run_suite(comparison, after_df, expected: TableFingerprint) -> tuple[list[str], int]:
    """Validate with Great Expectations 1.x; returns (failure descriptions, number of checks)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    gx = require("great_expectations", "verify")
    gxe = require("great_expectations.expectations", "verify")
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # GX draws a tqdm bar per metric batch on stderr; a job's console shows our progress lines only.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_spark("pipeline_opt_verify")
    suites: dict[str, tuple[Any, list[Any]]] = {
        "table": (after_df, [gxe.ExpectTableRowCountToEqual(value=expected.rows),
                             gxe.ExpectTableColumnsToMatchOrderedList(column_list=expected.column_names())]),
        "columns": (comparison, [gxe.ExpectColumnPairValuesToBeEqual(column_A=f"{k}_before", column_B=f"{k}_after")
                                 for k in ("type", "nulls", "checksum")]),
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
                failures.append(_describe(r, comparison))
    return failures, checks


def _describe(r, comparison) -> str:
    cfg = r.expectation_config
    kind, kwargs = cfg.type, {k: v for k, v in cfg.kwargs.items() if k != "batch_id"}
    if kind == "expect_column_pair_values_to_be_equal":
        a, b = kwargs["column_A"], kwargs["column_B"]
        bad = [f"{row['column']}: {row[a]} != {row[b]}"
               for row in comparison.where(f"{quote_ident(a)} <> {quote_ident(b)}").collect()]
        return f"{a.removesuffix('_before')} differs: " + "; ".join(bad)
    observed = (r.result or {}).get("observed_value")
    return f"{kind} {kwargs} failed (observed {observed!r})"
