"""The product's own workloads for benchmarks/cache.py: loader epochs, shared loaders, maintenance scans, Spark
schedules, wrong plans, the demo lakehouse; every policy with and without the plans, beside the offline bound.

Used by ``benchmarks/cache.py --only product`` (and by default); not run on its own.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from cache_cpu import cpu_over_lru, opcodes, opcodes_by_function, opcodes_over_lru, point_ratios

from pipeline_opt.cache import plans, policies
from pipeline_opt.cache.generate import generate
from pipeline_opt.cache.presets import PRESETS, preset
from pipeline_opt.cache.simulate import simulate
from pipeline_opt.cache.workload import Announcement, Workload

POLICIES = ["lru", "arc", "s3fifo", "sieve", "lrb", "learned", "keep_resident", "planned"]
SIZES = [0.25, 0.5, 0.75]
CPU_REPEATS = 5  # interleaved LRU / policy repeats per point for the CPU ratio (median)
OPCODE_POLICIES = ["s3fifo", "keep_resident", "planned"]  # the load-free instruction count (cache_cpu.opcodes)
WRONG = ("wrong-plans", "plans that lie (zipf)")  # workloads whose plans are wrong on purpose


def liar_zipf(n: int = 60_000, objects: int = 2000, seed: int = 3) -> Workload:
    """Zipf(0.9) reads of 2,000 files; one plan claims the hottest files are needed last (a lying schedule)."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, objects + 1) ** -0.9
    keys = rng.choice(objects, n, p=ranks / ranks.sum()).astype(np.int64)
    sizes = rng.integers(1 << 20, 20 << 20, objects).astype(np.int64)
    return Workload(WRONG[1], np.arange(n, dtype=np.uint64), keys, sizes[keys], ["t"], np.zeros(objects, np.int64),
                    [], ["liar"], np.full(n, -1, np.int64), [Announcement(0, 0, list(range(objects))[::-1])], sizes)


def demo_workload(root: Path, lakehouse: Path | None = None):
    """The demo lakehouse's loader epochs and nightly scans (None without a demo lakehouse); ``lakehouse``: where
    it is (default: ``make demo``'s ``demo-lakehouse``)."""
    lake = lakehouse or root / "demo-lakehouse"
    if not (lake / "lineitem" / "_delta_log").is_dir():
        return None
    from pipeline_opt.app.demo.cache import workload
    from pipeline_opt.app.demo.inputs import DemoInputs

    w = workload(DemoInputs(lake, lake, lake, None, root / "benchmarks" / "results"), epochs=4)
    marker = lake / ".pipeline-opt-demo-lakehouse"  # "TPC-H scale 1.0": the demo writes its scale there
    words = marker.read_text().split() if marker.is_file() else []
    w.name = f"demo lakehouse (TPC-H {float(words[-1]):g})" if words else "demo lakehouse"
    return w


def workloads(root: Path, quick: bool, lakehouse: Path | None = None) -> list:
    out = [generate(preset(name, 0.25 if quick else 1.0)) for name in PRESETS]
    demo = demo_workload(root, lakehouse)
    if demo is not None:
        out.append(demo)
    out.append(liar_zipf(n=20_000 if quick else 60_000))
    return out


def peak_used(workload: Workload, capacity: int) -> int:
    """The most bytes ``planned`` ever counted (objects + all its metadata), checked after every request."""
    policy = policies.make("planned", capacity)
    for t, name in enumerate(workload.table_names):
        plans.tag(policy, [int(k) for k in np.flatnonzero(workload.file_tables == t)], name)
    events = workload.announcements_at()
    peak = policy.used_bytes
    for i, (key, size) in enumerate(zip(workload.keys.tolist(), workload.sizes.tolist())):
        for a in events.get(i, ()):
            plans.announce(policy, workload.source_names[a.source], a.keys, a.start_after)
            peak = max(peak, policy.used_bytes)
        policy.request(key, size)
        peak = max(peak, policy.used_bytes)
        policy.pop_evicted()
    return peak


def run(root: Path, quick: bool, lakehouse: Path | None = None) -> dict:
    rows, bounds, facts = [], {}, []
    ws = workloads(root, quick, lakehouse)
    for w in ws:
        started = time.time()
        report = simulate(w, POLICIES, SIZES)
        rows += [dict(trace=w.name, **r.__dict__) for r in report.results]
        no_plans = simulate(w.without_plans(), ["planned"], SIZES, bound=False)
        rows += [dict(trace=w.name, **{**r.__dict__, "policy": "planned (no plans)"}) for r in no_plans.results]
        bounds.update({(w.name, b.size_fraction): b.byte_miss_ratio for b in report.bound})
        peaks = {f: peak_used(w, r.cache_bytes) for f, r in
                 ((r.size_fraction, r) for r in report.results if r.policy == "planned")}
        caps = {r.size_fraction: r.cache_bytes for r in report.results if r.policy == "planned"}
        facts.append({"trace": w.name, "requests": len(w), "files": len(w.file_tables),
                      "tables": len(w.table_names), "announcements": len(w.announcements),
                      "working_set_bytes": w.working_set_bytes,
                      "peak_used_over_capacity": {str(f): peaks[f] / caps[f] for f in SIZES}})
        print(f"{w.name}: {len(w)} requests, {time.time() - started:.0f} s", flush=True)
    started = time.time()
    repeats = 1 if quick else CPU_REPEATS
    cpu = cpu_over_lru(ws, [p for p in POLICIES if p != "lru"], SIZES, repeats)
    for w in ws:
        bare = w.without_plans()
        for f in SIZES:
            ratio = point_ratios(bare, ["planned"], f, repeats)["planned"]
            cpu["points"][f"{w.name} @ {f}"]["planned (no plans)"] = ratio
    cpu["median_over_points"]["planned (no plans)"] = statistics.median(
        p["planned (no plans)"] for p in cpu["points"].values())
    print(f"CPU / LRU, {repeats} interleaved repeats: {time.time() - started:.0f} s", flush=True)
    ops = opcodes_over_lru(ws, OPCODE_POLICIES, SIZES)
    for w in ws:
        bare = w.without_plans()
        for f in SIZES:
            ratio = opcodes(bare, "planned", f) / opcodes(bare, "lru", f)
            ops["points"][f"{w.name} @ {f}"]["planned (no plans)"] = ratio
    ops["median_over_points"]["planned (no plans)"] = statistics.median(
        p["planned (no plans)"] for p in ops["points"].values())
    ops["per_request_by_function"] = {"point": f"{ws[0].name} @ 0.5",
                                      **opcodes_by_function(ws[0], ["lru", "planned"], 0.5)}
    return {"sizes": SIZES, "policies": POLICIES, "workloads": facts, "results": rows,
            "bound": [{"trace": t, "size_fraction": f, "byte_miss_ratio": v} for (t, f), v in sorted(bounds.items())],
            "cpu_over_lru": cpu, "opcodes_over_lru": ops, "goals": goals(rows, bounds, facts, cpu, ops)}


def goals(rows: list, bounds: dict, facts: list, cpu: dict, ops: dict) -> dict:
    by = {(r["trace"], r["size_fraction"], r["policy"]): r for r in rows}
    traces = sorted({r["trace"] for r in rows})
    right = [t for t in traces if t not in WRONG]
    miss = lambda t, f, p: by[(t, f, p)]["byte_miss_ratio"]  # noqa: E731
    over_bound = {f"{t} @ {f}": miss(t, f, "planned") / bounds[(t, f)] for t in right for f in SIZES}
    lru_over = {t: miss(t, 0.5, "lru") / miss(t, 0.5, "planned") for t in right}
    bound_lru = {t: miss(t, 0.5, "lru") / bounds[(t, 0.5)] for t in right}
    planned_cpu = {point: ratios["planned"] for point, ratios in cpu["points"].items()}
    wrong = {f"{t} @ {f}": miss(t, f, "planned") / miss(t, f, "s3fifo") for t in traces if t in WRONG for f in SIZES}
    peak = max(v for x in facts for v in x["peak_used_over_capacity"].values())
    return {
        "planned_over_bound": over_bound, "planned_over_bound_max": max(over_bound.values()), "goal_over_bound": 1.1,
        "lru_over_planned_at_half": lru_over, "goal_lru_over_planned_at_half": 2.0,
        "lru_over_bound_at_half": bound_lru,
        "planned_cpu_over_lru": planned_cpu, "planned_cpu_over_lru_median": statistics.median(planned_cpu.values()),
        "planned_cpu_over_lru_max": max(planned_cpu.values()), "goal_cpu": 3.0,
        "planned_opcodes_over_lru_median": ops["median_over_points"]["planned"],
        "planned_opcodes_over_lru_max": max(p["planned"] for p in ops["points"].values()),
        "peak_used_over_capacity": peak, "goal_peak": 1.0,
        "wrong_plans_over_s3fifo": wrong, "wrong_plans_over_s3fifo_max": max(wrong.values()), "goal_wrong": 1.02,
    }
