"""What monitoring costs a job: recorder overhead per point, Delta flush time, trigger evaluation, report time.

Run: .venv/bin/python benchmarks/monitor.py [--points 200000]   → benchmarks/results/monitor.json

Side by side in one process: an empty ``with`` block vs ``recorder.timed`` (the overhead a job pays per timed
block), a gauge, the rollback watch per observed point, and appending the points to the Delta metrics table.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline_opt.monitor.metrics import MemorySink, Recorder  # noqa: E402
from pipeline_opt.monitor.report import build_report  # noqa: E402
from pipeline_opt.monitor.rollback import Baseline, Watch  # noqa: E402
from pipeline_opt.monitor.store import DeltaSink, read_metrics  # noqa: E402


def per_call_us(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return 1e6 * (time.perf_counter() - start) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "monitor.json"))
    args = ap.parse_args()
    n = args.points
    rec = Recorder(sinks=[MemorySink()], flush_every=10**9)
    null = contextlib.nullcontext()

    def empty():
        with null:
            pass

    def timed():
        with rec.timed("query", table="lineitem"):
            pass

    result = {"machine": f"{platform.machine()}, 2-core 24 GiB Linux VM, no GPU (shared with other jobs)",
              "points": n}
    result["empty_with_us"] = per_call_us(empty, n)
    result["timed_block_us"] = per_call_us(timed, n)
    result["gauge_us"] = per_call_us(lambda: rec.gauge("cache.hit_rate", 0.5, table="orders"), n)
    points = rec._buffer[:n]
    watch = Watch(Baseline({"latency.query": 1.0, "cache.hit_rate": 0.5}))
    it = iter(points)
    result["watch_observe_us"] = per_call_us(lambda: watch.observe(next(it)), n)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        DeltaSink(Path(tmp) / "m").write(points)
        result["delta_append_s"] = time.perf_counter() - start
        result["delta_append_us_per_point"] = 1e6 * result["delta_append_s"] / len(points)
        start = time.perf_counter()
        result["delta_read_points"] = len(read_metrics(Path(tmp) / "m"))
        result["delta_read_s"] = time.perf_counter() - start
        start = time.perf_counter()
        report = build_report(Path(tmp) / "report", ROOT / "benchmarks" / "results", Path(tmp) / "m")
        result["report_s"] = time.perf_counter() - start
        result["report_plots"] = len(report.images)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
