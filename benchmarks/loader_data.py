"""The tables of the loader's side-by-side benchmark: TPC-H lineitem with deletion vectors, and a DV-free copy.

Both are written by Spark + Delta from the same ``tpchgen-cli`` rows, range-partitioned on ``l_orderkey`` into the
same number of files, so the two differ only in the deletion vectors: ``lineitem_dv`` has one Spark DELETE applied
with deletion vectors on (every file keeps all its rows on disk and gains a vector), ``lineitem_plain`` holds only
the live rows of ``lineitem_dv`` and no vector. Built once per (scale, files) under the work folder.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

COLS = ["l_orderkey", "l_partkey", "l_suppkey", "l_linenumber", "l_quantity", "l_extendedprice", "l_discount", "l_tax"]
# Late cancellations plus one contiguous run of orders: sparse and dense vectors on most files.
DELETED = "l_orderkey % 97 = 0 OR l_orderkey BETWEEN 100000 AND 120000"


def build(work: Path, scale: float, files: int) -> dict:
    """{"dv": path, "plain": path} of the two tables for ``scale``, built on first use."""
    folder = Path(work).resolve() / f"peers_sf{scale:g}_f{files}"
    tables = {"dv": folder / "lineitem_dv", "plain": folder / "lineitem_plain"}
    if not (folder / "done").exists():
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        _tpchgen(folder / "src", scale)
        _spark_write(folder / "src" / "lineitem.parquet", tables, files)
        (folder / "done").touch()
    return {k: str(v) for k, v in tables.items()}


def _tpchgen(dest: Path, scale: float) -> None:
    exe = shutil.which("tpchgen-cli") or str(Path(sys.executable).with_name("tpchgen-cli"))
    subprocess.run([exe, "parquet", "-s", str(scale), "--tables", "lineitem", "--output-dir", str(dest)],
                   check=True, capture_output=True)


def _spark_write(source: Path, tables: dict, files: int) -> None:
    from pipeline_opt.spark import get_spark
    from pipeline_opt.sql import delta_ref

    spark = get_spark("loader-peers-data", conf={"spark.sql.shuffle.partitions": str(files)})
    try:
        rows = spark.read.parquet(str(source)).select(*COLS).repartitionByRange(files, "l_orderkey")
        rows.sortWithinPartitions("l_orderkey", "l_linenumber").write.format("delta") \
            .option("delta.enableDeletionVectors", "true").save(str(tables["dv"]))
        spark.sql(f"DELETE FROM {delta_ref(str(tables['dv']))} WHERE {DELETED}")
        live = spark.read.format("delta").load(str(tables["dv"])).repartitionByRange(files, "l_orderkey")
        live.sortWithinPartitions("l_orderkey", "l_linenumber").write.format("delta") \
            .option("delta.enableDeletionVectors", "false").save(str(tables["plain"]))
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the project is importable
    print(build(Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])))
