"""The demo lakehouse: TPC-H as Delta tables, written through Spark the way a real team's ingest would.

Invariants: deterministic for a given scale (same rows in the same commits; file names differ, as with any
Spark write); ``lineitem`` and ``orders`` arrive as a streaming ingest does — many commits in event-time order,
each adding a handful of small files — so they suffer the tiny-files problem (≥ 1,000 lineitem files at the
default scale); both are partitioned by year, as teams commonly do for time-ordered fact tables. The dimension
tables are written in one commit each.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

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
    """Append the table in event-time order, as ``shape`` = (commits, files per commit) of small files."""
    from pyspark.sql import functions as F

    order_col, part_expr, part_col = STREAMED[name]
    key = "l_orderkey" if name == "lineitem" else "o_orderkey"
    commits, files = shape
    df = spark.read.parquet(str(source))
    # The commit is the event date's slice of the table's date range: deterministic (the same rows land in the
    # same commit every run) and, unlike a rank over all rows, computed without moving every row to one task.
    first, last = df.agg(F.min(order_col), F.max(order_col)).first()
    span = (last - first).days + 1
    commit = F.least(F.lit(commits), F.floor(F.datediff(F.col(order_col), F.lit(first)) * commits / span) + 1)
    staged = source.with_name(f"{name}-by-commit")
    df.withColumn(part_col, F.expr(part_expr)).withColumn("_commit", commit.cast("int")) \
        .write.partitionBy("_commit").parquet(str(staged))
    for i in range(1, commits + 1):
        say(f"{name}: commit {i}/{commits}")
        batch = spark.read.parquet(str(staged)).where(F.col("_commit") == i).drop("_commit").repartition(files, key)
        writer = batch.write.format("delta").mode("append").partitionBy(part_col)
        if i == 1:
            writer = writer.option("delta.enableDeletionVectors", "true")
        writer.save(str(dest))
    if name == "lineitem":
        say(f"{name}: late cancellations ({CANCELLED})")
        spark.sql(f"DELETE FROM {delta_ref(str(dest))} WHERE {CANCELLED}")


def _facts(path: Path) -> dict:
    snap = read_snapshot(str(path))
    return {"files": len(snap.paths), "commits": snap.version + 1, "rows": snap.live_rows,
            "bytes": snap.table_bytes}
