"""The points one job run leaves in the metrics table: its facts, its failure, and the probe of what it committed.

Invariants: every point carries the labels of its table (``labels(table)``: its setting versions and arm, in a run
over several tables its own); a job's numbers become ``fact.<key>`` and, for the keys in ``facts.CANONICAL``, the
fixed names the triggers watch; an out-of-memory count is an event only when it is positive; the driver's memory
is ``host.rss_bytes``, kept out of ``memory.*``, which the memory trigger judges against the baseline; only tables
that a commit changed are probed.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from pipeline_opt.app.arms import name_of
from pipeline_opt.monitor.facts import Record, canonical, records
from pipeline_opt.monitor.metrics import Recorder, host_rss_bytes, is_oom

Labels = Callable[[str], dict[str, str]]  # table name ("" for the run) → the labels of its points


def record_facts(recorder: Recorder, result: Any, seconds: float, table: str, labels: Labels) -> None:
    """The run's wall time and memory, then every fact of every table its result speaks of."""
    rows = records(result, table)
    base = labels("")
    recorder.gauge("job.wall_s", seconds, "s", table=rows[0].table if len(rows) == 1 else "", **base)
    recorder.gauge("host.rss_bytes", host_rss_bytes(), "bytes", **base)
    for rec in rows:
        own = {**labels(name_of(rec.table)), "table": name_of(rec.table)}
        for key, value in rec.facts.items():
            recorder.gauge(f"fact.{key}", value, "", **own)
            name = canonical(key)
            if name == "event.oom":
                if value > 0:
                    recorder.record(name, value, "event", None, **own)
            elif name is not None:
                recorder.gauge(name, value, None, **own)


def record_failure(recorder: Recorder, error: BaseException, seconds: float, table: str, labels: Labels) -> None:
    own = {**labels(""), "table": table}
    recorder.gauge("job.wall_s", seconds, "s", **own)
    recorder.record("event.job_failed", 1, "event", "count", error=type(error).__name__, **own)
    if is_oom(error):
        recorder.oom(error=type(error).__name__, **own)


def record_probes(recorder: Recorder, spark, result: Any, queries: Mapping[str, list[str]], labels: Labels) -> None:
    """``latency.query`` for each read of each table the run committed to (see ``probe.probe_tables``)."""
    from pipeline_opt.app.probe import probe_tables, touched_partitions

    for rec, query, seconds in probe_tables(spark, committed(records(result)), queries, touched_partitions(result)):
        table = name_of(rec.table)
        recorder.record("latency.query", seconds, "timer", "s", probe=query, **{**labels(table), "table": table})


def committed(rows: list[Record]) -> list[Record]:
    """The records of tables a commit changed (a dry run, or nothing rewritten, changes nothing to time)."""
    return [
        r
        for r in rows
        if r.location
        and not r.facts.get("dry_run")
        and (r.facts.get("files_added", 0) > 0 or r.facts.get("applied", 0) > 0)
    ]
