"""The response-time probe: after a job commits to a table, time the reads that represent it.

Invariants: a table's representative queries come from ``probe_queries`` of ``conf/monitor.yml`` (by table name,
``{table}`` standing for the table); without them the probe reads every row and column of the partitions the job
committed to (a compaction's rewritten partitions; the whole table when it is not partitioned, when the job
re-laid all of it, or when it touched more than ``MAX_PREDICATES`` partitions) through a ``noop`` write, so Spark
cannot answer from the Delta log's statistics alone; the probe only reads.
"""
from __future__ import annotations

import time
from typing import Any, Iterator, Mapping, Optional, Sequence

from pipeline_opt.monitor.facts import Record
from pipeline_opt.output import to_jsonable
from pipeline_opt.sql import partition_predicate, quote_ident
from pipeline_opt.storage import for_engine

# a predicate per partition: past this many, one scan of the table costs less to plan than the OR of them all
MAX_PREDICATES = 200

Partitions = list[dict[str, Optional[str]]]


def probe_tables(spark, rows: Sequence[Record], queries: Mapping[str, list[str]],
                 touched: Optional[Mapping[str, Partitions]] = None) -> Iterator[tuple[Record, str, float]]:
    """(record, which probe, seconds) for each committed table; ``touched``: location → the partitions the job
    committed to (see ``touched_partitions``), whose rows are all the fallback scan reads."""
    for rec in rows:
        table = "delta." + quote_ident(for_engine(rec.location, "spark"))
        chosen = queries.get(rec.table) or []
        if not chosen:
            parts = (touched or {}).get(rec.location) or []
            where = _where(parts)
            sql = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "")
            yield rec, "partitions" if where else "scan", _timed(lambda: _noop(spark, sql))
            continue
        for i, query in enumerate(chosen):
            sql = query.replace("{table}", table)
            yield rec, f"query{i}", _timed(lambda: _noop(spark, sql))


def touched_partitions(result: Any) -> dict[str, Partitions]:
    """Location → values of each partition a compaction result committed (its plan's partitions whose batch got
    a version); results that are not a compaction's, or an unpartitioned table, give nothing (scan it all)."""
    data = to_jsonable(result)
    out: dict[str, Partitions] = {}
    for item in data if isinstance(data, list) else [data]:
        plan, batches = (item.get("plan"), item.get("batches")) if isinstance(item, dict) else (None, None)
        if not isinstance(plan, dict) or not isinstance(batches, list) or not isinstance(item.get("path"), str):
            continue
        committed = {label for b in batches if isinstance(b, dict) and b.get("version") is not None
                     for label in b.get("partitions") or []}
        values = [p["values"] for p in plan.get("partitions") or []
                  if isinstance(p, dict) and isinstance(p.get("values"), dict) and p["values"]
                  and _label(p["values"]) in committed]
        if values:
            out[item["path"]] = values
    return out


def _label(values: Mapping[str, Optional[str]]) -> str:
    return ",".join(f"{k}={v}" for k, v in values.items())  # as ``tables.plan.PartitionPlan.label`` names one


def _where(parts: Partitions) -> str:
    if not parts or len(parts) > MAX_PREDICATES:
        return ""
    return " OR ".join(f"({partition_predicate(values)})" for values in parts)


def _noop(spark, sql: str) -> None:
    spark.sql(sql).write.format("noop").mode("overwrite").save()


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started
