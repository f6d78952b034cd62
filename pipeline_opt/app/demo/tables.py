"""Showcase of the tables part: compact copies of the demo lakehouse's ``lineitem`` and ``orders``.

Invariant: the lakehouse itself is never modified (other demos read it); the copies under ``out/tables`` are
compacted, verified by the Great Expectations suite, and their health is reported before and after; a second
(dry) run plans 0 bytes; TPC-H Q1 and Q6 are timed on lineitem before (the lakehouse's) and after (the copy's).
"""
from __future__ import annotations

import shutil
import time
from typing import Optional

from pipeline_opt.app.demo.inputs import DemoInputs
from pipeline_opt.app.demo.queries import time_queries
from pipeline_opt.tables.compact import compact_table
from pipeline_opt.tables.health import table_health
from pipeline_opt.tables.options import CompactOptions
from pipeline_opt.tables.partition_filter import PartitionFilter
from pipeline_opt.tables.settings import DEFAULT_WINDOW

# table → partition filter (None: the whole table)
TABLES: dict[str, Optional[str]] = {"lineitem": None, "orders": None}


def run(inputs: DemoInputs) -> dict:
    from pipeline_opt.spark import get_spark

    spark = get_spark("pipeline_opt-demo")
    facts = {}
    for name, partition_filter in TABLES.items():
        copy = inputs.out / name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(inputs.lakehouse / name, copy)
        facts[name] = _compact_one(spark, str(copy), partition_filter)
    before = time_queries(spark, str(inputs.lakehouse / "lineitem"))
    # The compaction just wrote the copy's files (page cache warm) and the queries' code is compiled: no warm-up.
    after = time_queries(spark, str(inputs.out / "lineitem"), warm_up=False)
    facts["lineitem_queries_s"] = {q: {"before": before[q], "after": after[q]} for q in before}
    return facts


def _compact_one(spark, path: str, partition_filter: Optional[str]) -> dict:
    # "auto": these local path tables are rewritten by delta-rs in process (tables.inprocess), verified alike.
    options = CompactOptions(DEFAULT_WINDOW, PartitionFilter.parse(partition_filter) if partition_filter else None,
                             engine="auto")
    before = table_health(path, DEFAULT_WINDOW)
    t0 = time.monotonic()
    result = compact_table(spark, path, options)
    seconds = time.monotonic() - t0
    after = table_health(path, DEFAULT_WINDOW)
    second = compact_table(spark, path, options, dry_run=True)
    return {
        "partition_filter": partition_filter, "partitions_touched": result.partitions_touched,
        "files_before": before.stats.files, "files_after": after.stats.files,
        "bytes_rewritten": result.bytes_rewritten, "commits": result.summary()["commits"],
        "rows_before": result.rows_before, "rows_after": result.rows_after,
        "share_inside_before": round(result.share_inside_before, 3),
        "share_inside_after": round(result.share_inside_after, 3), "verified": result.verified,
        "checks": sum(b.verification.checks for b in result.batches if b.verification),
        "share_settled_after": round(after.share_settled, 3), "second_run_plans_bytes": second.plan.bytes_to_rewrite,
        "seconds": round(seconds, 1), "engine": result.engine,
    }
