"""The response-time probe: after a job commits to a table, time the reads that represent it.

Invariants: a table's representative queries come from ``probe_queries`` of ``conf/monitor.yml`` (by table name,
``{table}`` standing for the table); without them the probe reads every row and column of the table through a
``noop`` write, so Spark cannot answer from the Delta log's statistics alone; the probe only reads.
"""
from __future__ import annotations

import time
from typing import Iterator, Mapping, Sequence

from pipeline_opt.monitor.facts import Record
from pipeline_opt.sql import quote_ident
from pipeline_opt.storage import for_engine


def probe_tables(spark, rows: Sequence[Record], queries: Mapping[str, list[str]]
                 ) -> Iterator[tuple[Record, str, float]]:
    """(record, which probe, seconds) for each committed table."""
    for rec in rows:
        table = "delta." + quote_ident(for_engine(rec.location, "spark"))
        chosen = queries.get(rec.table) or []
        if not chosen:
            yield rec, "scan", _timed(lambda: spark.sql(f"SELECT * FROM {table}").write.format("noop")
                                      .mode("overwrite").save())
            continue
        for i, query in enumerate(chosen):
            sql = query.replace("{table}", table)
            yield rec, f"query{i}", _timed(lambda: spark.sql(sql).write.format("noop").mode("overwrite").save())


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started
