"""The two ways to verify one compaction commit, on the same commit: Spark (``verify.verify_rewrite``, the removed
and added files read through ``DeltaLog.createDataFrame``) and in process (``inprocess.verify_commit``: Arrow reads,
polars or NumPy row hashes); both end in the same great-expectations suite.

Run: .venv/bin/python benchmarks/verification.py [--scale 1] [--files 2000] [--repeats 3]
     → benchmarks/results/verification.json (one entry per scale)

TPC-H lineitem (tpchgen-cli, ``--scale``) as ``--files`` tiny files (as ``compaction.py``), compacted once by our
Spark engine without verification; then each verifier runs ``--repeats`` times on that commit, taking turns, after
one untimed warm-up each (the great-expectations import, the JVM's compiled code). Reported: median wall and CPU
seconds of this process (Spark's executors run in the JVM, whose CPU is not counted: wall is the fair figure on one
machine), the verdict, and the ratio in-process / Spark.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.compaction import MB, lineitem_parquet, tiny_table  # noqa: E402
from pipeline_opt.spark import get_spark  # noqa: E402
from pipeline_opt.tables.compact import compact_table  # noqa: E402
from pipeline_opt.tables.inprocess import verify_commit  # noqa: E402
from pipeline_opt.tables.options import CompactOptions  # noqa: E402
from pipeline_opt.tables.settings import Window  # noqa: E402
from pipeline_opt.tables.verify import verify_rewrite  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", default=str(ROOT / "benchmarks" / "work" / "verification"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "verification.json"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    table = work / "table"
    shutil.rmtree(table, ignore_errors=True)
    tiny_table(lineitem_parquet(work, args.scale), table, args.files)
    spark = get_spark("pipeline_opt-bench-verification")
    result = compact_table(spark, str(table), CompactOptions(Window(16 * MB, 10**9), verify=False))
    versions = [b.version for b in result.batches if b.version is not None]
    verifiers = {
        "spark": lambda v: verify_rewrite(spark, str(table), v - 1, v, touched=True),
        "in_process": lambda v: verify_commit(str(table), v),
    }
    times: dict[str, list[float]] = {name: [] for name in verifiers}
    cpu: dict[str, list[float]] = {name: [] for name in verifiers}
    verdicts: dict[str, bool] = {}
    for repeat in range(args.repeats + 1):
        for name, verify in verifiers.items():
            t0, c0 = time.perf_counter(), time.process_time()
            verdicts[name] = all(verify(v).ok for v in versions)
            if repeat:  # the first round warms up
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
            print(f"[verification] {name} round {repeat}: {time.perf_counter() - t0:.2f} s", flush=True)
    summary = {name: {"wall_s": round(statistics.median(times[name]), 2),
                      "python_cpu_s": round(statistics.median(cpu[name]), 2), "ok": verdicts[name],
                      "runs_s": [round(t, 2) for t in times[name]]} for name in verifiers}
    entry = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "load_avg_1min_end": os.getloadavg()[0],
             "scale": args.scale, "files": args.files, "commits": len(versions),
             "bytes_rewritten": result.bytes_rewritten, "rewrite_s": round(result.duration_s, 2), **summary,
             "in_process_vs_spark_wall": round(summary["in_process"]["wall_s"] / summary["spark"]["wall_s"], 2)}
    out = Path(args.out)
    saved = json.loads(out.read_text()) if out.exists() else {}
    saved[f"scale_{args.scale:g}"] = entry
    out.write_text(json.dumps(saved, indent=2) + "\n")
    print(json.dumps(entry, indent=2))


if __name__ == "__main__":
    main()
