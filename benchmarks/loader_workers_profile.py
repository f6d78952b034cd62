"""Where our loader's processes spend their CPU: user and kernel time and minor page faults per process and epoch.

Usage: .venv/bin/python benchmarks/loader_workers_profile.py [--scale 0.2] [--files 16] [--epochs 10] [--rounds 3]
       [--baseline benchmarks/work/baseline]
Writes benchmarks/results/loader_workers_profile.json. The table is ``lineitem_plain`` of ``loader_data.py``; each case
is one of ``loader_peer_cases.py`` (``--baseline`` adds ``baseline_w2``, a copy of ``pipeline_opt/loader`` from
before a change). Each measurement is a fresh process: it builds the loader, runs one cold epoch (which starts the
persistent workers), then reads ``/proc/<pid>/stat`` of itself and of each worker before and after ``--epochs`` warm
epochs. Rounds interleave the cases, so the shared machine's load falls on all of them alike; medians are reported.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

import loader_data  # noqa: E402
from loader_peer_cases import CASES, COLS  # noqa: E402


def _stat(pid: int) -> dict:
    """Minor faults and user/kernel CPU seconds of one process (``proc(5)``: fields 10, 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return {"minflt": int(fields[7]), "user_s": int(fields[11]) / tick, "sys_s": int(fields[12]) / tick}


def measure(case: str, table: str, epochs: int) -> dict:
    import psutil

    fn, workers, setup = CASES[case]
    if setup is not None:
        setup()
    loader = fn(table, workers)
    for _ in loader:  # the cold epoch starts the workers
        pass
    me = psutil.Process()
    pids = {"main": [me.pid], "worker": [c.pid for c in me.children(recursive=True)]}
    before = {p: _stat(p) for role in pids.values() for p in role}
    rows, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            rows += len(batch[COLS[0]])
    wall = time.perf_counter() - t0
    after = {p: _stat(p) for p in before}
    out = {"case": case, "rows_per_s": round(rows / wall), "epoch_s": round(wall / epochs, 4), "processes": {}}
    for role, group in pids.items():
        per = [{k: (after[p][k] - before[p][k]) / epochs for k in before[p]} for p in group]
        if per:  # per process of that role, per epoch
            out["processes"][role] = {"count": len(per), **{k: round(statistics.mean(x[k] for x in per), 4)
                                                           for k in per[0]}}
    return out


def run(case: str, table: str, epochs: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", case, "--table", table, "--epochs", str(epochs)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = [x for x in done.stderr.strip().splitlines() if x.strip()]
        return {"case": case, "error": (tail[-1] if tail else f"exit {done.returncode}")[:400]}
    return json.loads(lines[-1])


def summary(runs: list) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0]["error"], "runs": runs}
    med = statistics.median
    out: dict = {"median_rows_per_s": round(med(r["rows_per_s"] for r in ok)),
                 "median_epoch_s": round(med(r["epoch_s"] for r in ok), 4)}
    for role in ok[0]["processes"]:
        got = [r["processes"][role] for r in ok]
        out[role] = {"count": got[0]["count"], "user_ms_per_epoch": round(1000 * med(g["user_s"] for g in got), 1),
                     "sys_ms_per_epoch": round(1000 * med(g["sys_s"] for g in got), 1),
                     "minor_faults_per_epoch": round(med(g["minflt"] for g in got))}
        cpu = out[role]["user_ms_per_epoch"] + out[role]["sys_ms_per_epoch"]
        out[role]["kernel_share"] = round(out[role]["sys_ms_per_epoch"] / cpu, 3) if cpu else None
    return {**out, "runs": runs}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.2)
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=10, help="warm epochs measured per process")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", default=None, help="a folder holding loader/, a copy of pipeline_opt/loader")
    ap.add_argument("--work", default=str(ROOT / "work"))
    ap.add_argument("--out", default=str(ROOT / "results" / "loader_workers_profile.json"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--table", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.table, args.epochs)), flush=True)
        return {}
    if args.baseline:
        os.environ["PIPELINE_OPT_LOADER_BASELINE"] = str(Path(args.baseline).resolve())  # the children inherit it
    cases = ["ours_w0", "ours_w2"] + (["baseline_w2"] if args.baseline else [])
    table = loader_data.build(Path(args.work), args.scale, args.files)["plain"]
    load_before = os.getloadavg()
    runs: dict = {c: [] for c in cases}
    for _ in range(args.rounds):
        for c in cases:
            runs[c].append(run(c, table, args.epochs))
            print(c, json.dumps(runs[c][-1]), flush=True)
    result = {"machine": {"cpus": os.cpu_count(), "load_average_before": load_before,
                          "load_average_after": os.getloadavg()},
              "data": {"table": f"TPC-H lineitem, scale {args.scale:g}, {args.files} files (lineitem_plain)",
                       "warm_epochs": args.epochs, "rounds": args.rounds},
              "cases": {c: summary(v) for c, v in runs.items()}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({c: {k: v for k, v in s.items() if k != "runs"} for c, s in result["cases"].items()}, indent=2))
    return result


if __name__ == "__main__":
    main()
