"""What recording costs each job: the time a run spends outside the job's own work when monitoring is on.

Run: .venv/bin/python benchmarks/monitor_overhead.py [--repeats 5]   → benchmarks/results/monitor_overhead.json

Each job runs ``--repeats`` times with monitoring on, through ``run_job`` as every entry point does, on tables built
here under a temporary lakehouse. Per run, the job's own time is the ``job.wall_s`` point the wrapper records around
the work, the probe's time is its ``latency.query`` points, and the recording overhead is the rest of ``run_job``'s
time (open the metrics table, read the settings, write the points, step the rollouts). Each repeat runs the job
twice with monitoring on: once as the first run of a process (the metrics table opened from its log, as a CLI run
does) and once after another run (the table the process kept, brought up to date), then once with monitoring off,
for the plain medians. Results report medians and the overhead as a share of the job's time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline_opt.app import monitoring  # noqa: E402
from pipeline_opt.app.jobs import run_job  # noqa: E402
from pipeline_opt.monitor import store  # noqa: E402
from pipeline_opt.monitor.store import read_metrics  # noqa: E402


def small_files(path: Path, files: int, rows: int) -> str:
    from deltalake import write_deltalake

    rng = np.random.default_rng(0)
    for i in range(files):
        write_deltalake(
            str(path),
            pa.table(
                {
                    "id": np.arange(i * rows, (i + 1) * rows),
                    "x": rng.normal(size=rows),
                    "y": rng.integers(0, 1000, rows),
                }
            ),
            mode="append",
        )
    return str(path)


def prefill(metrics: Path, runs: int) -> None:
    """``runs`` commits of 25 points each, as that many earlier job runs leave the metrics table."""
    from pipeline_opt.monitor.metrics import MetricPoint

    sink = store.DeltaSink(metrics)
    for run in range(runs):
        sink.write(
            [
                MetricPoint(
                    time.time(),
                    f"fact.earlier{i}",
                    "gauge",
                    float(i),
                    "",
                    "earlier",
                    f"run{run}",
                    {"table": "t", "arm": "", "version": "compaction.min_file_size@default"},
                )
                for i in range(25)
            ]
        )
    store._KEPT.clear()


def cases(work: Path, spark) -> dict:
    """job → (how to prepare a fresh input, params, spark or None)."""
    counter = iter(range(10**6))

    def compact_input() -> dict:
        return {
            "path": small_files(work / f"compact{next(counter)}", 40, 5000),
            "min_file_size": "1MiB",
            "target_file_size": "4MiB",
            "no_verify": "true",
        }

    health = small_files(work / "health", 200, 500)
    stream = small_files(work / "stream", 20, 50_000)
    return {
        "health": (lambda: {"path": health}, None),
        "stream": (lambda: {"path": stream, "batch_size": "8192"}, None),
        "memory-plan": (
            lambda: {"model": "gpt", "layers": "4", "d_model": "256", "device": "cpu", "budget_gib": "2"},
            None,
        ),
        "compact": (compact_input, spark),
    }


def monitored_run(name: str, params: dict, spark, metrics: Path, first: bool) -> tuple[float, float, float]:
    """(run_job's time, the job's own time, the probe's time) of one monitored run; ``first``: as a process's first."""
    os.environ[monitoring.ENV] = str(metrics.parent.parent / "monitor.yml")
    seen = {p.run_id for p in read_metrics(metrics)}
    if first:
        store._KEPT.clear()
    start = time.perf_counter()
    run_job(name, params, spark=spark, progress=lambda m: None)
    total = time.perf_counter() - start
    mine = [p for p in read_metrics(metrics) if p.run_id not in seen]
    return (
        total,
        next(p.value for p in mine if p.name == "job.wall_s"),
        sum(p.value for p in mine if p.name == "latency.query"),
    )


def run_case(name: str, prepare, spark, repeats: int, metrics: Path) -> dict:
    runs: dict[bool, list[tuple[float, float, float]]] = {True: [], False: []}
    off = []
    for _ in range(repeats):
        for first in (True, False):  # interleaved, so both see the same load
            runs[first].append(monitored_run(name, prepare(), spark, metrics, first))
        params = prepare()
        os.environ[monitoring.ENV] = "off"
        start = time.perf_counter()
        run_job(name, params, spark=spark, progress=lambda m: None)
        off.append(time.perf_counter() - start)
    # the probe is a measurement the run asks for, not the cost of recording: reported on its own
    overhead = {first: [total - inside - probe for total, inside, probe in r] for first, r in runs.items()}
    job_s = [inside for r in runs.values() for _, inside, _ in r]
    med_job = statistics.median(job_s)
    med_first, med_later = statistics.median(overhead[True]), statistics.median(overhead[False])
    return {
        "job": name,
        "runs": repeats,
        "job_s_median": round(med_job, 4),
        "monitoring_off_s_median": round(statistics.median(off), 4),
        "monitoring_on_s_median": round(statistics.median(r[0] for r in runs[False]), 4),
        "probe_s_median": round(statistics.median(r[2] for r in runs[False]), 4),
        "overhead_first_run_s_median": round(med_first, 4),
        "overhead_first_run_s_max": round(max(overhead[True]), 4),
        "overhead_s_median": round(med_later, 4),
        "overhead_s_max": round(max(overhead[False]), 4),
        "overhead_first_run_share_of_job": round(med_first / med_job, 4) if med_job else None,
        "overhead_share_of_job": round(med_later / med_job, 4) if med_job else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--jobs", default="health,stream,memory-plan,compact")
    ap.add_argument(
        "--prefill",
        type=int,
        default=150,
        help="commits of earlier runs' points in the metrics table before measuring (a lived-in table)",
    )
    ap.add_argument(
        "--checkpoint-every",
        type=int,
        default=store.CHECKPOINT_EVERY,
        help="commits between checkpoints of the metrics table",
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "monitor_overhead.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "lakehouse").mkdir()
        metrics = work / "lakehouse" / "_metrics"
        (work / "monitor.yml").write_text(f"metrics_table: {metrics}\nconfig_store: {work / 'lakehouse/_settings'}\n")
        store.CHECKPOINT_EVERY = args.checkpoint_every
        prefill(metrics, args.prefill)
        chosen = args.jobs.split(",")
        spark = None
        if "compact" in chosen:
            from pipeline_opt.spark import get_spark

            spark = get_spark("monitor-overhead")
        table = cases(work, spark)
        for name in chosen:  # one warm-up each: imports and the JVM's first plan are not the recording's cost
            prepare, session = table[name]
            os.environ[monitoring.ENV] = "off"
            run_job(name, prepare(), spark=session, progress=lambda m: None)
        results = [run_case(name, *table[name], args.repeats, metrics) for name in chosen]
        points = len(read_metrics(metrics))
    out = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "repeats": args.repeats,
        "prefill_commits": args.prefill,
        "checkpoint_every": args.checkpoint_every,
        "metric_points_written": points,
        "results": results,
        "note": "overhead = run_job time with monitoring on minus the job's own time (its job.wall_s point) and "
        "minus the response-time probe (compact: a full read of the table after its commit), which is "
        "reported as probe_s; first_run: the metrics table opened from its log (a process's first run, "
        "as every CLI run); the others: a later run in the same process (the kept table updated)",
    }
    Path(args.out).write_text(json.dumps(out, indent=2))
    for r in results:
        print(
            f"{r['job']:12} job {r['job_s_median']:.3f} s  recording: first run of a process "
            f"{r['overhead_first_run_s_median'] * 1000:.1f} ms ({(r['overhead_first_run_share_of_job'] or 0):.1%}), "
            f"later {r['overhead_s_median'] * 1000:.1f} ms ({(r['overhead_share_of_job'] or 0):.1%})  "
            f"probe {r['probe_s_median']:.3f} s"
        )


if __name__ == "__main__":
    main()
