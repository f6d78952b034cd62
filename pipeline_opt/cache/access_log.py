"""Table reads from Spark event logs and from a CSV export of Databricks ``system.access.table_lineage``.

Invariants: an ``Access`` is one scan of one table by one query, in time order; Delta's own log-replay scans are not
accesses; bytes come from the scan's "size of files read" metric when the log has it, else the table's current size
from its Delta log (delta-rs), else the row is kept with ``bytes=0`` and the controller reports it as unsized.
Unreadable input (not UTF-8, not JSON, JSON of the wrong shape or type, a time that is not a time, a size outside
``0..MAX_SIZE``) raises ``AccessLogError`` naming the file and the line.
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
from pipeline_opt.units import MAX_SIZE

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
            for n, line in enumerate(f, 1):
                yield _decoded(path, n, line)
        return
    import pyarrow as pa

    try:
        with pa.CompressedInputStream(pa.OSFile(str(path)), codec) as s:
            data = _read_available(s)
    except (OSError, pa.ArrowException) as e:
        raise AccessLogError(f"{path}: cannot decompress {codec} event log: {e}") from None
    for n, line in enumerate(data.splitlines(), 1):
        yield _decoded(path, n, line)


def _decoded(path: Path, n: int, line: bytes) -> str:
    """Spark writes event logs as UTF-8 (Jackson); other bytes mean the file is not an event log."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AccessLogError(f"{path}: line {n} is not UTF-8 text (byte {e.start}: {line[e.start:e.start + 4]!r}); "
                             "expected a Spark event log") from None


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
        event = _event(path, n, line)
        try:
            _take(event, scans, metric_values)
        except (AttributeError, TypeError, ValueError, KeyError, OverflowError, RecursionError) as e:
            why = " ".join(str(e).split())[:80]
            kind = str(event.get("Event")).rsplit(".", 1)[-1][:60]
            raise AccessLogError(f"{path}: line {n}: a {kind} event of the wrong shape "
                                 f"({type(e).__name__}: {why})") from None
    accesses = []
    for (_, table), (t, location, ids) in scans.items():
        read = sum(metric_values.get(i, 0) for i in ids)
        accesses.append(Access(int(t or 0), table, location, read or table_bytes(location)))
    return accesses


def _event(path: Path, n: int, line: str) -> dict:
    try:
        event = json.loads(line)
    except json.JSONDecodeError as e:
        raise AccessLogError(f"{path}: line {n} is not JSON: {e.msg}") from None
    except RecursionError:
        raise AccessLogError(f"{path}: line {n} nests JSON deeper than Python can read") from None
    if not isinstance(event, dict) or not isinstance(event.get("Event", ""), str):
        raise AccessLogError(f"{path}: line {n} is not a Spark event (a JSON object with a string 'Event')")
    t = event.get("time")
    if t is not None and not (type(t) is int and 0 <= t < 2**63):
        raise AccessLogError(f"{path}: line {n}: time {str(t)[:40]!r} is not milliseconds since 1970")
    return event


def _take(event: dict, scans: dict, metric_values: dict) -> None:
    """Adds one event's scans or metric values; a part of the wrong JSON type raises a built-in error."""
    kind = event.get("Event", "")
    if kind.endswith("DriverAccumUpdates"):
        for i, v in event.get("accumUpdates", []):
            # every SQL metric comes through here (times in ns too), and Spark writes -1 for one never set
            if not -(2**63) <= int(v) < 2**63:
                raise ValueError(f"metric {i} = {v} is not a 64-bit metric value")
            metric_values[int(i)] = max(0, int(v))
    elif kind.endswith(("SQLExecutionStart", "SQLAdaptiveExecutionUpdate")):
        exec_id, t = event.get("executionId"), event.get("time")
        hash(exec_id)
        for table, location, metric_ids in _plan_scans(event.get("sparkPlanInfo") or {}):
            entry = scans.setdefault((exec_id, table), [t, location, set()])
            entry[2].update(metric_ids)
            if t is not None and entry[0] is None:
                entry[0] = t


def _plan_scans(node: dict) -> Iterator[tuple[str, str, list[int]]]:
    if not isinstance(node, dict):
        raise TypeError(f"a plan node is a {type(node).__name__}, not an object")
    name = str(node.get("nodeName", ""))
    location = str(node.get("metadata", {}).get("Location", ""))
    if name.startswith(_SCAN) and location and "DeltaLogFileIndex" not in location and "_delta_log" not in location:
        m = _LOCATION.search(location)
        path = m.group("paths").split(",")[0].strip() if m else ""
        table = name[len(_SCAN):].split(" ", 1)[1].strip() if " " in name[len(_SCAN):] else ""
        ids = [int(m["accumulatorId"]) for m in node.get("metrics", []) if m.get("name") == "size of files read"]
        yield (table or path, path, ids)
    for child in node.get("children", []):
        yield from _plan_scans(child)


def read_lineage_csv(path: Path) -> list[Access]:
    """Rows of a ``system.access.table_lineage`` export with a source table; optional ``size_bytes`` column."""
    try:
        return _lineage_rows(path)
    except UnicodeDecodeError as e:
        raise AccessLogError(f"{path}: not UTF-8 text (byte {e.start} of a read block); save the export as UTF-8") \
            from None
    except csv.Error as e:
        raise AccessLogError(f"{path}: not CSV: {e}") from None


def _lineage_rows(path: Path) -> list[Access]:
    out = []
    with path.open(newline="", encoding="utf-8") as f:
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
                size = _size(row["size_bytes"]) if row.get("size_bytes") else table_bytes(location)
            except (ValueError, OverflowError) as e:
                raise AccessLogError(f"{path}: line {reader.line_num}: {e}") from None
            out.append(Access(t, table, location, size))
    return out


def _size(text: str) -> int:
    x = float(text)
    if not 0 <= x <= MAX_SIZE:  # NaN fails too
        raise ValueError(f"size_bytes {text[:30]!r} is not in 0..{MAX_SIZE} (1 PiB)")
    return int(x)


def _millis(text: str) -> int:
    from datetime import datetime, timezone

    text = text.strip()
    if text.isdigit():
        if len(text) > 18:
            raise ValueError(f"event_time {text[:30]!r} is not milliseconds since 1970")
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"event_time {text[:40]!r} is not an ISO time or milliseconds since 1970") from None
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

