"""Table reads from Spark event logs and from a CSV export of Databricks ``system.access.table_lineage``.

Invariants: an ``Access`` is one scan of one table by one query, in time order; Delta's own log-replay scans are not
accesses; bytes come from the scan's "size of files read" metric when the log has it, else the table's current size
from its Delta log (delta-rs), else the row is kept with ``bytes=0`` and the controller reports it as unsized.
Unreadable input raises ``AccessLogError`` naming the file and the line.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from pipeline_opt.delta import read_snapshot
from pipeline_opt.errors import PipelineOptError

_LOCATION = re.compile(r"\[(?P<paths>[^\]]+)\]")
_SCAN = "Scan "


class AccessLogError(PipelineOptError):
    """An event log or lineage export cannot be read."""


@dataclass(frozen=True)
class Access:
    time_ms: int
    table: str  # catalog name when known, else the table's location
    location: str  # storage path ('' when unknown)
    bytes: int


def read_access_logs(paths: Iterable[str | Path]) -> list[Access]:
    """Every access in the given event-log files/directories and lineage CSVs, sorted by time."""
    out: list[Access] = []
    for p in map(Path, paths):
        if not p.exists():
            raise AccessLogError(f"{p}: access log not found")
        if p.is_file() and p.suffix.lower() == ".csv":
            out.extend(read_lineage_csv(p))
        else:
            for f in _event_files(p):
                out.extend(read_event_log(f))
    out.sort(key=lambda a: a.time_ms)
    return out


def _event_files(p: Path) -> list[Path]:
    if p.is_file():
        return [p]
    return sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith((".", "appstatus")))


def _lines(path: Path) -> Iterator[str]:
    """Lines of a plain or compressed (zstd, lz4, snappy are Spark's codecs; zstd is its default) event log."""
    name = path.name[: -len(".inprogress")] if path.name.endswith(".inprogress") else path.name
    codec = {"zstd": "zstd", "zst": "zstd", "lz4": "lz4", "gz": "gzip"}.get(name.rsplit(".", 1)[-1])
    if codec is None:
        with path.open("rb") as f:
            yield from (line.decode("utf-8", "replace") for line in f)
        return
    import pyarrow as pa

    try:
        with pa.CompressedInputStream(pa.OSFile(str(path)), codec) as s:
            data = _read_available(s)
    except (OSError, pa.ArrowException) as e:
        raise AccessLogError(f"{path}: cannot decompress {codec} event log: {e}") from None
    yield from data.decode("utf-8", "replace").splitlines()


def _read_available(stream) -> bytes:
    """All decompressed bytes; a log still being written ends mid-frame, so keep what was decoded before that."""
    chunks: list[bytes] = []
    while True:
        try:
            chunk = stream.read(1 << 20)
        except OSError:
            if not chunks:
                raise
            break
        if not chunk:
            break
        chunks.append(chunk)
    data = b"".join(chunks)
    return data[: data.rfind(b"\n") + 1]


def read_event_log(path: Path) -> list[Access]:
    """Scans of data files in SQL plans (start and adaptive updates); sizes from the driver's scan metrics."""
    scans: dict[tuple[int, str], list] = {}  # (execution, table) -> [time, location, metric ids]
    metric_values: dict[int, int] = {}
    for n, line in enumerate(_lines(path), 1):
        if '"Event"' not in line or ("SQLExecutionStart" not in line and "SQLAdaptiveExecutionUpdate" not in line
                                     and "DriverAccumUpdates" not in line):
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as e:
            raise AccessLogError(f"{path}: line {n} is not JSON: {e.msg}") from None
        kind = event.get("Event", "")
        if kind.endswith("DriverAccumUpdates"):
            metric_values.update({int(i): int(v) for i, v in event.get("accumUpdates", [])})
        elif kind.endswith(("SQLExecutionStart", "SQLAdaptiveExecutionUpdate")):
            exec_id, t = event.get("executionId"), event.get("time")
            for table, location, metric_ids in _plan_scans(event.get("sparkPlanInfo") or {}):
                entry = scans.setdefault((exec_id, table), [t, location, set()])
                entry[2].update(metric_ids)
                if t is not None and entry[0] is None:
                    entry[0] = t
    accesses = []
    for (_, table), (t, location, ids) in scans.items():
        read = sum(metric_values.get(i, 0) for i in ids)
        accesses.append(Access(int(t or 0), table, location, read or table_bytes(location)))
    return accesses


def _plan_scans(node: dict) -> Iterator[tuple[str, str, list[int]]]:
    name = node.get("nodeName", "")
    location = node.get("metadata", {}).get("Location", "")
    if name.startswith(_SCAN) and location and "DeltaLogFileIndex" not in location and "_delta_log" not in location:
        m = _LOCATION.search(location)
        path = m.group("paths").split(",")[0].strip() if m else ""
        table = name[len(_SCAN):].split(" ", 1)[1].strip() if " " in name[len(_SCAN):] else ""
        ids = [m["accumulatorId"] for m in node.get("metrics", []) if m.get("name") == "size of files read"]
        yield (table or path, path, ids)
    for child in node.get("children", []):
        yield from _plan_scans(child)


def read_lineage_csv(path: Path) -> list[Access]:
    """Rows of a ``system.access.table_lineage`` export with a source table; optional ``size_bytes`` column."""
    out = []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        if "event_time" not in cols or not cols & {"source_table_full_name", "source_path"}:
            raise AccessLogError(f"{path}: not a table_lineage export (needs event_time and source_table_full_name "
                                 f"or source_path; has {sorted(cols)})")
        for row in reader:
            table = (row.get("source_table_full_name") or row.get("source_path") or "").strip()
            if not table:
                continue  # a write-only lineage row
            location = (row.get("source_path") or "").strip()
            try:
                t = _millis(row["event_time"])
                size = int(float(row["size_bytes"])) if row.get("size_bytes") else table_bytes(location)
            except ValueError as e:
                raise AccessLogError(f"{path}: line {reader.line_num}: {e}") from None
            out.append(Access(t, table, location, size))
    return out


def _millis(text: str) -> int:
    from datetime import datetime, timezone

    text = text.strip()
    if text.isdigit():
        return int(text)
    dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def table_bytes(location: str) -> int:
    """Bytes of the table's live files from its Delta log, or 0 when the location cannot be read."""
    if not location:
        return 0
    try:
        return read_snapshot(local_path(location)).table_bytes
    except Exception:  # unreachable store or not a Delta table: the controller reports the table as unsized
        return 0


def local_path(location: str) -> str:
    """``file:/x`` and ``file:///x`` → ``/x``; other URIs unchanged."""
    if location.startswith("file://"):
        return location[len("file://"):]
    if location.startswith("file:"):
        return location[len("file:"):]
    return location

