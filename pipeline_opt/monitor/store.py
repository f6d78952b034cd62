"""The Delta table of metrics: appended by jobs, read by the report, the triggers and Spark.

Invariants: append-only (``write_deltalake`` mode ``append``: one commit per flush, never a rewrite); one fixed
schema (``SCHEMA``) so Spark and delta-rs read every commit alike (``labels`` is a ``map<string,string>``, so
Spark SQL can say ``labels['table']``); reading a path that holds no table yet gives no points, not an error; a
process keeps the metrics table it last wrote open (``check_metrics_location`` hands it to the next run, brought up
to date with the commits since, so a scheduler or notebook running many jobs loads the log once) and opens it
afresh when its latest commit is gone (a local table removed or replaced under it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
import pyarrow as pa

from pipeline_opt.errors import PipelineOptError
from pipeline_opt.monitor.metrics import MetricPoint

SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("us", tz="UTC")),
        ("run_id", pa.string()),
        ("job", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("value", pa.float64()),
        ("unit", pa.string()),
        ("labels", pa.map_(pa.string(), pa.string())),
    ]
)


# commits between checkpoints of the metrics table: opening it replays every commit since the last checkpoint
# (~0.5 ms each), and a run that opens it afresh (every CLI run) pays that; a checkpoint costs about one open
CHECKPOINT_EVERY = 10

# location and options → the metrics table this process wrote last; taken out while a run uses it, so two runs in
# threads never share one table object
_KEPT: dict[tuple[str, tuple], Any] = {}
_KEPT_LOCK = threading.Lock()


def to_arrow(points: Iterable[MetricPoint]) -> pa.Table:
    points = list(points)
    return pa.table(
        {
            "ts": pa.array([int(p.ts * 1e6) for p in points], pa.int64()).cast(SCHEMA.field("ts").type),
            "run_id": [p.run_id for p in points],
            "job": [p.job for p in points],
            "name": [p.name for p in points],
            "kind": [p.kind for p in points],
            "value": pa.array([p.value for p in points], pa.float64()),
            "unit": [p.unit for p in points],
            "labels": pa.array([list(p.labels.items()) for p in points], SCHEMA.field("labels").type),
        },
        schema=SCHEMA,
    )


def from_arrow(table: pa.Table) -> list[MetricPoint]:
    ts = table.column("ts").cast(pa.int64()).to_numpy() / 1e6
    cols = {c: table.column(c).to_pylist() for c in ("run_id", "job", "name", "kind", "value", "unit", "labels")}
    return [
        MetricPoint(
            float(ts[i]),
            cols["name"][i],
            cols["kind"][i],
            cols["value"][i],
            cols["unit"][i],
            cols["job"][i],
            cols["run_id"][i],
            dict(cols["labels"][i] or []),
        )
        for i in range(table.num_rows)
    ]


class DeltaSink:
    """A recorder sink that appends each flush to the Delta table at ``path`` (created on first write).

    ``table``: the table already open (``check_metrics_location`` gives it), so a run opens the log once."""

    def __init__(self, path: str | Path, storage_options: Optional[dict] = None, table=None) -> None:
        self.path, self.storage_options, self.table = str(path), storage_options, table

    def write(self, points: list[MetricPoint]) -> None:
        if not points:
            return
        from deltalake import DeltaTable, write_deltalake

        write_deltalake(
            self.table if self.table is not None else self.path,
            to_arrow(points),
            mode="append",
            storage_options=self.storage_options,
        )
        if self.table is None:
            self.table = DeltaTable(self.path, storage_options=self.storage_options)
        if self.table.version() % CHECKPOINT_EVERY == 0:  # one commit per job run: keep opening the log cheap
            self.table.create_checkpoint()
        _keep(self.path, self.storage_options, self.table)

    def points(self) -> list[MetricPoint]:
        """Every point in the table, read through the open table (no second load of its log)."""
        if self.table is None:
            return read_metrics(self.path, self.storage_options)
        return from_arrow(self.table.to_pyarrow_table())


class MetricsTableError(PipelineOptError):
    """The metrics location holds something that is not this recorder's Delta table."""


def check_metrics_location(path: str | Path, storage_options: Optional[dict] = None):
    """The metrics table at ``path`` (a ``DeltaTable``), or None when nothing is there yet; refuses anything else (a
    folder of other files, or a Delta table with other columns, i.e. someone else's table) before a point is
    written to it."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    text = str(path)
    table = _kept(text, storage_options)
    if table is None:
        try:
            table = DeltaTable(text, storage_options=storage_options)
        except TableNotFoundError:
            table = None
    if table is not None:
        names = table.schema().to_arrow().names
        if list(names) != SCHEMA.names:
            raise MetricsTableError(
                f"metrics table {text}: is a Delta table with columns {', '.join(names)}, not "
                f"a metrics table ({', '.join(SCHEMA.names)}); name another metrics_table"
            )
        return table
    local = Path(text) if "://" not in text else None
    if local is not None and local.exists() and (not local.is_dir() or any(local.iterdir())):
        raise MetricsTableError(f"metrics table {text}: exists and is not a Delta table; name another metrics_table")
    return None


def _key(path: str, storage_options: Optional[dict]) -> tuple[str, tuple]:
    return path, tuple(sorted((storage_options or {}).items()))


def _keep(path: str, storage_options: Optional[dict], table) -> None:
    with _KEPT_LOCK:
        _KEPT[_key(path, storage_options)] = table


def _kept(path: str, storage_options: Optional[dict]):
    """The table this process kept for ``path``, up to date, or None (none kept, or it cannot be trusted)."""
    with _KEPT_LOCK:
        table = _KEPT.pop(_key(path, storage_options), None)
    if table is None:
        return None
    local = Path(path) / "_delta_log" / f"{table.version():020d}.json" if "://" not in path else None
    if local is not None and not local.is_file():  # removed, or replaced by a table with a shorter log
        return None
    try:
        table.update_incremental()
    except Exception:  # noqa: BLE001 — whatever went wrong, a fresh open decides
        return None
    return table


def read_metrics(path: str | Path, storage_options: Optional[dict] = None) -> list[MetricPoint]:
    """Every point in the metrics table; ``[]`` where no table has been written yet."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(str(path), storage_options=storage_options):
        return []
    return from_arrow(DeltaTable(str(path), storage_options=storage_options).to_pyarrow_table())


@dataclass
class Summary:
    name: str
    unit: str
    count: int
    mean: float
    p50: float
    p95: float
    last: float


def summarize(points: Iterable[MetricPoint], by_label: Union[str, Sequence[str], None] = None) -> list[Summary]:
    """Per metric name (split by the value of label ``by_label``, or of several labels): count, mean, p50, p95 and
    the latest value. One label shows as ``name[value]``, several as ``name[k=v,k=v]``."""
    labels = [by_label] if isinstance(by_label, str) else list(by_label or [])
    groups: dict[tuple[str, str], list[MetricPoint]] = {}
    for p in sorted(points, key=lambda p: p.ts):
        if len(labels) == 1:
            split = p.labels.get(labels[0], "")
        else:
            split = ",".join(f"{k}={p.labels[k]}" for k in labels if k in p.labels)
        groups.setdefault((p.name, split), []).append(p)
    out = []
    for (name, split), group in sorted(groups.items()):
        values = np.array([p.value for p in group])
        p50, p95 = np.percentile(values, [50, 95])
        shown = f"{name}[{split}]" if split else name
        out.append(
            Summary(shown, group[0].unit, len(values), float(values.mean()), float(p50), float(p95), float(values[-1]))
        )
    return out
