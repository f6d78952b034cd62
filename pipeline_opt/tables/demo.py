"""Demo of the tables part: compact copies of the demo lakehouse's ``lineitem`` and ``orders``.

Invariant: the lakehouse itself is never modified (other demos read it); the copies under ``out/tables`` are
compacted, verified by the Great Expectations suite, and their health is reported before and after.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from pipeline_opt.tables.compact import CompactOptions, compact_table
from pipeline_opt.tables.health import table_health
from pipeline_opt.tables.plan import Window

TABLES = ("lineitem", "orders")


def run(lakehouse: Path, out: Path) -> dict:
    from pipeline_opt.spark import get_spark

    spark = get_spark("pipeline_opt-demo")
    facts = {}
    for name in TABLES:
        copy = Path(out) / "tables" / name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(Path(lakehouse) / name, copy)
        facts[name] = _compact_one(spark, str(copy))
    return facts


def _compact_one(spark, path: str) -> dict:
    window = Window(16 * 10**6, 10**9)
    before = table_health(path, window.min_size, window.max_size)
    t0 = time.monotonic()
    result = compact_table(spark, path, CompactOptions(window))
    seconds = time.monotonic() - t0
    after = table_health(path, window.min_size, window.max_size)
    second = compact_table(spark, path, CompactOptions(window), dry_run=True)
    return {
        "files_before": before.stats.files, "files_after": after.stats.files,
        "bytes_rewritten": result.bytes_rewritten, "commits": result.summary()["commits"],
        "rows_before": result.rows_before, "rows_after": result.rows_after,
        "verified": result.verified, "checks": sum(b.verification.checks for b in result.batches if b.verification),
        "share_settled_after": round(after.share_settled, 3), "second_run_plans_bytes": second.plan.bytes_to_rewrite,
        "seconds": round(seconds, 1),
    }
