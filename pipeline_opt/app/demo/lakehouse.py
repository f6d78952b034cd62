"""The demo lakehouse: TPC-H as Delta tables, shaped the way a real team's ingest leaves them.

Invariants: deterministic for a given scale (same rows in the same commits, same file names); ``lineitem`` and
``orders`` arrive as a streaming ingest does — many commits in event-time order, each adding a handful of small files
with per-file statistics — so they suffer the tiny-files problem (≥ 1,000 lineitem files at the default scale);
both are partitioned by year, as teams commonly do for time-ordered fact tables; late cancellations are one Spark
DELETE on lineitem with deletion vectors on. The dimension tables are written by Spark in one commit each.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable, Schema
from deltalake.transaction import AddAction, create_table_with_add_actions

from pipeline_opt.app.progress import Progress
from pipeline_opt.delta import read_snapshot
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.sql import delta_ref

# table → (order column, partition column expression, partition column name)
STREAMED = {
    "lineitem": ("l_shipdate", "year(l_shipdate)", "l_shipyear"),
    "orders": ("o_orderdate", "year(o_orderdate)", "o_orderyear"),
}
DIMENSIONS = ("customer", "part", "partsupp", "supplier", "nation", "region")
# Written first into every folder ``generate`` fills: only a folder carrying it may be regenerated (deleted).
MARKER = ".pipeline-opt-demo-lakehouse"
# (commits, files per commit): enough commits to look like an ingest, few enough to build in about a minute.
COMMITS = {"lineitem": (25, 40), "orders": (10, 30)}
# Late cancellations, applied as one DELETE after the ingest: leaves deletion vectors on most lineitem files.
CANCELLED = "l_orderkey % 97 = 0"


@dataclass
class LakehouseResult:
    root: str
    scale: float
    seconds: float
    tables: dict[str, dict] = field(default_factory=dict)

    def render(self) -> str:
        lines = [f"demo lakehouse at {self.root} (TPC-H scale {self.scale}, {self.seconds:.0f} s)"]
        for name, t in self.tables.items():
            lines.append(f"  {name:<9} {t['files']:>6,} files  {t['commits']:>4} commits  {t['rows']:>10,} rows")
        return "\n".join(lines)


def generate(out: Path, scale: float = 0.1, spark=None, progress=None, ingest=None) -> LakehouseResult:
    """Write every TPC-H table under ``out/<table>`` as a Delta table; ``out`` must not hold tables yet.

    ``ingest`` overrides ``COMMITS`` (table → (commits, files per commit)), e.g. to build a tiny copy in tests.
    """
    if scale <= 0:
        raise PipelineOptError(f"--scale {scale}: must be positive")
    out = Path(out)
    existing = [t for t in (*STREAMED, *DIMENSIONS) if (out / t).exists()]
    if existing:
        raise PipelineOptError(f"{out}: already holds {', '.join(existing)}; choose an empty folder")
    if out.exists() and (not out.is_dir() or any(p.name != MARKER for p in out.iterdir())):
        raise PipelineOptError(f"{out}: exists and is not an empty folder or a demo lakehouse; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(f"TPC-H scale {scale}\n")
    shapes = {name: (ingest or COMMITS)[name] for name in STREAMED}
    steps = 1 + len(DIMENSIONS) + sum(commits for commits, _ in shapes.values()) + 1
    with Progress(steps, "demo lakehouse") if progress is None else nullcontext(progress) as say:
        if spark is None:
            from pipeline_opt.spark import get_spark

            spark = get_spark("pipeline_opt-demo-data")
        started = time.perf_counter()
        result = LakehouseResult(str(out), scale, 0.0)
        with tempfile.TemporaryDirectory(prefix="tpch-") as src:
            say(f"TPC-H scale {scale:g}: tpchgen-cli")
            _tpchgen(Path(src), scale)
            for name in DIMENSIONS:
                say(f"{name}: one commit")
                spark.read.parquet(f"{src}/{name}.parquet").write.format("delta").save(str(out / name))
                result.tables[name] = _facts(out / name)
            for name in STREAMED:
                _stream_in(spark, Path(src) / f"{name}.parquet", out / name, name, shapes[name], say)
                result.tables[name] = _facts(out / name)
        result.seconds = time.perf_counter() - started
    return result


def is_demo_lakehouse(folder: Path) -> bool:
    """Whether ``folder`` was made by ``generate`` (so regenerating it deletes nothing of the user's)."""
    return (Path(folder) / MARKER).is_file()


def _tpchgen(dest: Path, scale: float) -> None:
    exe = shutil.which("tpchgen-cli") or str(Path(sys.executable).with_name("tpchgen-cli"))
    cmd = [exe, "parquet", "-s", str(scale), "--output-dir", str(dest), "--no-progress", "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise PipelineOptError(f"tpchgen-cli failed: {done.stderr.strip()[-300:]}")


def _stream_in(spark, source: Path, dest: Path, name: str, shape: tuple[int, int], say) -> None:
    """Append the table in event-time order, as ``shape`` = (commits, files per commit and year) of small files.

    Each commit's files are written with pyarrow (Spark's layout and file names, per-file statistics) and committed
    with delta-rs: an ingest job's many small commits, built in seconds rather than a Spark job each.
    """
    order_col, _, part_col = STREAMED[name]
    commits, files = shape
    table = _plain_strings(pq.read_table(source))
    # The commit is the event date's slice of the table's date range: deterministic, the same rows every run.
    days = pc.cast(table[order_col], pa.int32()).to_numpy()
    first, span = int(days.min()), int(days.max() - days.min()) + 1
    commit_of = np.minimum(commits, (days - first) * commits // span + 1)
    years = pc.year(table[order_col]).to_numpy()
    schema = table.schema.append(pa.field(part_col, pa.int32(), nullable=False))
    for i in range(1, commits + 1):
        say(f"{name}: commit {i}/{commits}")
        in_commit = commit_of == i
        adds: list = []  # of AddAction
        for year in np.unique(years[in_commit]):
            rows = table.filter(pa.array(in_commit & (years == year)))
            for j, chunk in enumerate(_chunks(rows, files)):
                adds.append(_write_file(dest, part_col, int(year), i, j, chunk))
        if i == 1:
            create_table_with_add_actions(str(dest), Schema.from_arrow(schema), adds, partition_by=[part_col])
        else:
            DeltaTable(str(dest)).create_write_transaction(adds, mode="append", schema=Schema.from_arrow(schema),
                                                           partition_by=[part_col])
    if name == "lineitem":
        say(f"{name}: late cancellations ({CANCELLED})")
        spark.sql(f"ALTER TABLE {delta_ref(str(dest))} SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
        spark.sql(f"DELETE FROM {delta_ref(str(dest))} WHERE {CANCELLED}")


def _plain_strings(table: pa.Table) -> pa.Table:
    """tpchgen-cli reads back as Arrow ``string_view``; Delta's schema knows plain strings."""
    fields = [pa.field(f.name, pa.string(), f.nullable) if pa.types.is_string_view(f.type) else f for f in table.schema]
    return table.cast(pa.schema(fields))


def _chunks(rows: pa.Table, files: int) -> list[pa.Table]:
    step = -(-rows.num_rows // files)
    return [rows.slice(k, step) for k in range(0, rows.num_rows, step)]


def _write_file(dest: Path, part_col: str, year: int, commit: int, j: int, chunk: pa.Table) -> AddAction:
    name = uuid.uuid5(uuid.NAMESPACE_URL, f"{part_col}/{commit}/{year}/{j}")  # the same names on every run
    rel = f"{part_col}={year}/part-{j:05d}-{name}.c000.snappy.parquet"
    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(chunk, dest / rel, compression="snappy")
    return AddAction(rel, (dest / rel).stat().st_size, {part_col: str(year)}, int(time.time() * 1000), True,
                     json.dumps(_stats(chunk)))


def _stats(chunk: pa.Table) -> dict:
    """Delta file statistics as Spark writes them for the columns readers skip on: numbers and dates."""
    lo, hi, nulls = {}, {}, {}
    for name in chunk.column_names:
        column = chunk[name]
        if pa.types.is_integer(column.type) or pa.types.is_decimal(column.type) or pa.types.is_date(column.type):
            bounds = pc.min_max(column)
            lo[name], hi[name] = (_json_value(bounds["min"]), _json_value(bounds["max"]))
            nulls[name] = column.null_count
    return {"numRecords": chunk.num_rows, "minValues": lo, "maxValues": hi, "nullCount": nulls}


def _json_value(scalar: pa.Scalar):
    """A statistic as the Delta log spells it: dates as ISO text, decimals as numbers, integers as they are."""
    value = scalar.as_py()
    if isinstance(value, int):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else float(value)


def _facts(path: Path) -> dict:
    snap = read_snapshot(str(path))
    return {"files": len(snap.paths), "commits": snap.version + 1, "rows": snap.live_rows,
            "bytes": snap.table_bytes}
