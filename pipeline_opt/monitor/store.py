"""The Delta table of metrics: appended by jobs, read by the report, the triggers and Spark.

Invariants: append-only (``write_deltalake`` mode ``append``: one commit per flush, never a rewrite); one fixed
schema (``SCHEMA``) so Spark and delta-rs read every commit alike (``labels`` is a ``map<string,string>``, so
Spark SQL can say ``labels['table']``); reading a path that holds no table yet gives no points, not an error.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np
import pyarrow as pa

from pipeline_opt.monitor.metrics import MetricPoint

SCHEMA = pa.schema([
    ("ts", pa.timestamp("us", tz="UTC")),
    ("run_id", pa.string()),
    ("job", pa.string()),
    ("name", pa.string()),
    ("kind", pa.string()),
    ("value", pa.float64()),
    ("unit", pa.string()),
    ("labels", pa.map_(pa.string(), pa.string())),
])


def to_arrow(points: Iterable[MetricPoint]) -> pa.Table:
    points = list(points)
    return pa.table({
        "ts": pa.array([int(p.ts * 1e6) for p in points], pa.int64()).cast(SCHEMA.field("ts").type),
        "run_id": [p.run_id for p in points], "job": [p.job for p in points], "name": [p.name for p in points],
        "kind": [p.kind for p in points], "value": pa.array([p.value for p in points], pa.float64()),
        "unit": [p.unit for p in points],
        "labels": pa.array([list(p.labels.items()) for p in points], SCHEMA.field("labels").type),
    }, schema=SCHEMA)


def from_arrow(table: pa.Table) -> list[MetricPoint]:
    ts = table.column("ts").cast(pa.int64()).to_numpy() / 1e6
    cols = {c: table.column(c).to_pylist() for c in ("run_id", "job", "name", "kind", "value", "unit", "labels")}
    return [MetricPoint(float(ts[i]), cols["name"][i], cols["kind"][i], cols["value"][i], cols["unit"][i],
                        cols["job"][i], cols["run_id"][i], dict(cols["labels"][i] or []))
            for i in range(table.num_rows)]


class DeltaSink:
    """A recorder sink that appends each flush to the Delta table at ``path`` (created on first write)."""

    def __init__(self, path: str | Path, storage_options: Optional[dict] = None) -> None:
        self.path, self.storage_options = str(path), storage_options

    def write(self, points: list[MetricPoint]) -> None:
        if not points:
            return
        from deltalake import write_deltalake

        write_deltalake(self.path, to_arrow(points), mode="append", storage_options=self.storage_options)


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
        out.append(Summary(shown, group[0].unit, len(values), float(values.mean()), float(p50), float(p95),
                           float(values[-1])))
    return out
