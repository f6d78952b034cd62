"""Compaction side by side: ours (verified and unverified) vs plain Delta OPTIMIZE vs delta-rs ``optimize.compact``.

Run: .venv/bin/python benchmarks/compaction.py [--scale 1] [--files 2000] [--days 30] [--only compaction]
     → benchmarks/results/compaction.json, one entry per scale ({"scale_0.1": …, "scale_1": …, "scale_10": …});
     a run replaces only the sections it ran, of its own scale. The default scale is 1 (lineitem: 6 M rows);
     ``--scale 10`` (60 M rows) is the large case; ``--repeats 0`` skips the query timings.

1. TPC-H lineitem (tpchgen-cli, ``--scale``) as a Delta table of ``--files`` tiny files; identical copies
   compacted by plain ``OPTIMIZE`` (OSS defaults), ours verified, ours with ``verify=False``, ours verified with the
   in-process engine (delta-rs rewrite, Arrow verification), ours verified and Z-ordered by the keys the partitioning
   advisor picks from the TPC-H queries' filters (``ours_advised``; ``--compactors`` picks a subset) and delta-rs
   (128 MiB target, as the anchor ``shared/anchors/compaction_anchor.py``), in that order: wall time (ours: also its
   verification seconds and the ratios to plain OPTIMIZE), peak driver memory per run (the Python process' and the
   JVM's peak RSS, ``VmHWM`` reset before each run, plus ``getrusage``'s lifetime peak), files, share of bytes in
   the 16 MB – 1 GB window; Spark TPC-H Q1 and Q6 (median of ``--repeats``) on the tiny table and on each result.
2. Write amplification over ``--days`` daily cycles (30 appends a day, then a compaction), as the anchor
   ``write_amp_anchor.py``: 25 MB a day at scale 1. Every size — the data, our window, plain OPTIMIZE's 1 GiB and
   delta-rs' 100 MiB / 1 GiB targets — is multiplied by ``--scale``, so a small run stays in the same regime.
   Our runs skip verification here (it reads, never writes, so it cannot change bytes rewritten).
3. Health scan of a 100,000-file log (no data files) vs merely reading its add actions with deltalake.
4. ``--only queries``: Q1/Q6 again (median of ``--repeats``, the tables taking turns) on the tables the last
   compaction run of that ``--work`` left, without rewriting them: more repeats where one compaction run had few.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deltalake import DeltaTable, write_deltalake  # noqa: E402
from deltalake.transaction import AddAction  # noqa: E402

from pipeline_opt.app.demo.maintenance import TPCH_LINEITEM_PREDICATES  # noqa: E402
from pipeline_opt.app.demo.queries import Q1, Q6  # noqa: E402  (the demo times the same two queries)
from pipeline_opt.spark import get_spark  # noqa: E402
from pipeline_opt.tables.compact import compact_table  # noqa: E402
from pipeline_opt.tables.health import table_health  # noqa: E402
from pipeline_opt.tables.options import CompactOptions  # noqa: E402
from pipeline_opt.tables.partitioning import advise  # noqa: E402
from pipeline_opt.tables.settings import Window  # noqa: E402
from tests.harness.synthetic_log import write_synthetic_log  # noqa: E402

MB, MIB, GIB = 10**6, 2**20, 2**30


def log(msg: str) -> None:
    print(f"[compaction] {msg}", file=sys.stderr, flush=True)


def _jvm_pid(spark):
    try:
        return int(spark.sparkContext._gateway.proc.pid)  # spark-submit execs the JVM in place
    except Exception:  # noqa: BLE001 — Spark Connect or an attached session: no JVM of ours
        return None


def _reset_peaks(pids) -> None:
    """Reset each process' peak RSS (``VmHWM``) so the next reading is the peak of one run only."""
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            pass


def _peak_mb(pid) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, TypeError):
        return None
    return None


def timed(spark, fn) -> tuple[object, dict]:
    """``fn()`` with its wall seconds and the driver's peak memory during it (Python and JVM, MB)."""
    jvm = _jvm_pid(spark)
    _reset_peaks([os.getpid(), jvm] if jvm else [os.getpid()])
    t0 = time.perf_counter()
    out = fn()
    seconds = round(time.perf_counter() - t0, 2)
    return out, {"seconds": seconds, "load_avg_1min_after": round(os.getloadavg()[0], 1),
                 "peak_python_rss_mb": _peak_mb(os.getpid()), "peak_jvm_rss_mb": _peak_mb(jvm),
                 "python_lifetime_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def lineitem_parquet(work: Path, scale: float) -> Path:
    out = work / f"tpch-{scale}"
    if not (out / "lineitem.parquet").exists():
        exe = shutil.which("tpchgen-cli") or str(Path(sys.executable).with_name("tpchgen-cli"))
        subprocess.run([exe, "parquet", "-s", str(scale), "--tables=lineitem", f"--output-dir={out}"], check=True)
    return out / "lineitem.parquet"


def tiny_table(src: Path, path: Path, files: int) -> None:
    """``files`` tiny files in two commits: delta-rs creates the table, one low-level commit adds the rest."""
    table = pq.read_table(src)
    step = -(-table.num_rows // files)
    write_deltalake(str(path), table.slice(0, step))
    actions = []
    for i in range(1, files):
        part = table.slice(i * step, step)
        name = f"part-tiny-{i:05d}.parquet"
        pq.write_table(part, path / name)
        actions.append(AddAction(name, (path / name).stat().st_size, {}, int(time.time() * 1000), True,
                                 json.dumps({"numRecords": part.num_rows})))
    dt = DeltaTable(str(path))
    dt.create_write_transaction(actions, mode="append", schema=dt.schema())


def share_in_window(path: Path, lo: int = 16 * MB, hi: int = 10**9) -> dict:
    h = table_health(str(path), Window(lo, hi))
    return {"files": h.stats.files, "share_inside": round(h.stats.share_inside, 4),
            "share_settled": round(h.share_settled, 4)}


def plain_optimize(spark, path: Path, min_size: int = GIB, max_size: int = GIB) -> dict:
    session = spark.newSession()  # OSS defaults: minFileSize = maxFileSize = 1 GiB
    session.conf.set("spark.databricks.delta.optimize.minFileSize", str(min_size))
    session.conf.set("spark.databricks.delta.optimize.maxFileSize", str(max_size))
    m = session.sql(f"OPTIMIZE delta.`{path}`").collect()[0]["metrics"]
    return {"files_removed": m["numFilesRemoved"], "bytes_rewritten": int(m["filesRemoved"]["totalSize"] or 0)}


def query_seconds(spark, paths: dict[str, Path], repeats: int) -> dict[str, dict]:
    """Median Q1/Q6 seconds per table; the tables take turns in every repetition so drift hits all alike."""
    times = {(name, q): [] for name in paths for q in ("q1", "q6")}
    for _ in range(repeats):
        for name, path in paths.items():
            for q, sql in (("q1", Q1), ("q6", Q6)):
                t0 = time.perf_counter()
                spark.read.format("delta").load(str(path)).createOrReplaceTempView("lineitem")
                spark.sql(sql).collect()
                times[(name, q)].append(time.perf_counter() - t0)
    return {name: {q: round(statistics.median(times[(name, q)]), 3) for q in ("q1", "q6")} for name in paths}


COMPACTORS = ("plain", "ours", "ours_unverified", "ours_inprocess", "ours_advised", "deltars")
# ours with each engine: Spark's OPTIMIZE (the default) or delta-rs in this process ("ours_inprocess", verified);
# "ours_advised" also Z-orders the rewrite by the clustering keys the partitioning advisor picks from the WHERE
# clauses of the TPC-H queries that read lineitem (Z-order, as the in-process engine writes no liquid clustering).
OURS = {"ours": ("spark", True), "ours_unverified": ("spark", False), "ours_inprocess": ("delta-rs", True),
        "ours_advised": ("auto", True)}


def ours_compaction(spark, path: Path, name: str, window: Window):
    """One of our runs; ``ours_advised`` asks the advisor first (its Spark pass is part of the timed run, and its
    seconds are reported apart: advice is taken once, compaction runs every day)."""
    engine, verify = OURS[name]
    zorder_by: list[str] = []
    facts: dict = {}
    if name == "ours_advised":
        t0 = time.perf_counter()
        advice = advise(spark, str(path), predicates=TPCH_LINEITEM_PREDICATES)
        zorder_by = advice.cluster_by or advice.zorder_by
        facts = {"zorder_by": zorder_by, "advice_seconds": round(time.perf_counter() - t0, 2)}
    options = CompactOptions(window, verify=verify, engine=engine, zorder_by=zorder_by)
    return compact_table(spark, str(path), options), facts


def compaction_section(spark, work: Path, scale: float, files: int, repeats: int,
                       compactors: tuple[str, ...] = COMPACTORS) -> dict:
    src = lineitem_parquet(work, scale)
    tiny = work / "tiny"
    shutil.rmtree(tiny, ignore_errors=True)
    tiny_table(src, tiny, files)
    copies = {name: work / name for name in COMPACTORS if name in compactors}
    for p in copies.values():
        shutil.rmtree(p, ignore_errors=True)
        shutil.copytree(tiny, p)
    res = {"tiny": {**share_in_window(tiny), "bytes": table_health(str(tiny)).stats.bytes}}
    log(f"tiny table: {res['tiny']}")
    # The tiny-table queries run first: they warm the JVM and the page cache before anything is timed against
    # anything else, and plain OPTIMIZE goes before ours so a warm-up can only favour the anchor.
    if repeats:
        res["tiny"].update(query_seconds(spark, {"tiny": tiny}, 1)["tiny"])  # warm-up; re-measured below
        log(f"queries tiny: {res['tiny']}")
    else:  # --repeats 0: no query timings, a plain scan warms the JVM instead
        spark.read.format("delta").load(str(tiny)).count()
    if "plain" in copies:
        plain, stats = timed(spark, lambda: plain_optimize(spark, copies["plain"]))
        res["plain"] = {**plain, **stats}
        log(f"plain: {res['plain']}")
    window = Window(16 * MB, 10**9)
    for name in (n for n in copies if n in OURS):
        (ours, facts), stats = timed(spark, lambda: ours_compaction(spark, copies[name], name, window))
        res[name] = {**stats, **facts, "verify_seconds": ours.summary()["verify_s"],
                     "bytes_rewritten": ours.bytes_rewritten, "verified": ours.verified, "target": ours.plan.target,
                     "commits": len(ours.batches),
                     "checks": sum(b.verification.checks for b in ours.batches if b.verification),
                     "rewrite_engine": ours.engine,
                     "engine": next((b.verification.engine for b in ours.batches if b.verification), None)}
        log(f"{name}: {res[name]}")
    if "deltars" in copies:
        m, stats = timed(spark, lambda: DeltaTable(str(copies["deltars"])).optimize.compact(target_size=128 * MIB))
        res["deltars"] = {**stats, "files_removed": m["numFilesRemoved"]}
    for name, p in copies.items():
        res[name].update(share_in_window(p))
    log(f"compacted: {res}")
    if repeats:
        for name, seconds in query_seconds(spark, {"tiny": tiny, **copies}, repeats).items():
            res[name].update(seconds)
            log(f"queries {name}: {res[name]}")
        _speedups(res, copies)
    for name in (n for n in copies if n in OURS):  # each of ours against the two anchors, wall time
        for anchor in ("plain", "deltars"):
            if anchor in res:
                res[f"{name}_vs_{anchor}_wall"] = round(res[name]["seconds"] / res[anchor]["seconds"], 2)
        if "advice_seconds" in res[name]:
            for anchor in ("plain", "deltars"):
                if anchor in res:
                    res[f"{name}_vs_{anchor}_wall_without_advice"] = round(
                        (res[name]["seconds"] - res[name]["advice_seconds"]) / res[anchor]["seconds"], 2)
        if "plain" in res and res[name]["verify_seconds"]:
            res[f"{name}_vs_plain_wall_without_verification"] = round(
                (res[name]["seconds"] - res[name]["verify_seconds"]) / res["plain"]["seconds"], 2)
    return res


def queries_section(spark, work: Path, repeats: int) -> dict:
    """Q1/Q6 medians, and speedups over the tiny table, on the tables the last compaction run left in ``work``."""
    paths = {name: work / name for name in ("tiny", *COMPACTORS) if (work / name / "_delta_log").is_dir()}
    if "tiny" not in paths:
        raise SystemExit(f"no compaction run's tables in {work}: run --only compaction first")
    query_seconds(spark, {"tiny": paths["tiny"]}, 1)  # warm-up, as in the compaction run
    res: dict = {"repeats": repeats, **query_seconds(spark, paths, repeats)}
    _speedups(res, paths)
    for name in paths:
        log(f"queries {name}: {res[name]}")
    return res


def _speedups(res: dict, names) -> None:
    """Each table's Q1/Q6 speedup over the tiny table, added to its entry of ``res``."""
    for name in names:
        for q in ("q1", "q6"):
            res[name][f"{q}_speedup"] = round(res["tiny"][q] / res[name][q], 2)


def _table_bytes(path: Path) -> int:
    try:
        return int(pa.table(DeltaTable(str(path)).get_add_actions(flatten=True)).column("size_bytes")
                   .to_numpy().sum())
    except Exception:  # noqa: BLE001 — the table does not exist before the first append
        return 0


def write_amp_section(spark, work: Path, scale: float, days: int, on_day=None) -> dict:
    tables = {k: work / f"wa-{k}" for k in ("ours", "plain", "deltars_100mib", "deltars_1gib")}
    for p in tables.values():
        shutil.rmtree(p, ignore_errors=True)
    rng = np.random.default_rng(0)
    rows = max(int(25000 * scale), 10)
    ingested, rewritten = 0, {k: 0 for k in tables}
    window = Window(int(16 * MB * scale), int(10**9 * scale))
    for day in range(days):
        for i in range(30):
            n0 = (day * 30 + i) * rows
            t = pa.table({"id": np.arange(rows) + n0, "x": rng.random(rows), "y": rng.random(rows),
                          "z": rng.integers(0, 1 << 40, rows)})
            before = _table_bytes(tables["ours"])
            for p in tables.values():
                write_deltalake(str(p), t, mode="append")
            ingested += _table_bytes(tables["ours"]) - before
        rewritten["ours"] += compact_table(spark, str(tables["ours"]), CompactOptions(window, verify=False)) \
            .bytes_rewritten
        rewritten["plain"] += plain_optimize(spark, tables["plain"], int(GIB * scale), int(GIB * scale))[
            "bytes_rewritten"]
        for key, target in (("deltars_100mib", 100 * MIB), ("deltars_1gib", GIB)):
            m = DeltaTable(str(tables[key])).optimize.compact(target_size=int(target * scale))
            rewritten[key] += json.loads(m["filesRemoved"])["totalSize"] if m["numFilesRemoved"] else 0
        mb = {k: round(v / MB, 1) for k, v in rewritten.items()}
        log(f"day {day + 1}: ingested {ingested / MB:.1f} MB, rewritten {mb}")
        if on_day:
            on_day(_write_amp_summary(tables, window, day + 1, ingested, rewritten))
    return _write_amp_summary(tables, window, days, ingested, rewritten)


def _write_amp_summary(tables, window, days, ingested, rewritten) -> dict:
    out = {"days": days, "mb_per_day": round(ingested / days / MB, 2), "ingested_mb": round(ingested / MB, 1),
           "window_scaled": [window.min_size, window.max_size]}
    for k, p in tables.items():
        h = table_health(str(p), window)
        out[k] = {"write_amplification": round(rewritten[k] / max(ingested, 1), 2),
                  "rewritten_mb": round(rewritten[k] / MB, 1), "final_files": h.stats.files,
                  "final_sizes_mb": sorted(round(x / MB, 2) for x in table_files_sizes(p)),
                  "share_inside_scaled_window": round(h.stats.share_inside, 4)}
    return out


def table_files_sizes(path: Path) -> list[int]:
    return pa.table(DeltaTable(str(path)).get_add_actions(flatten=True)).column("size_bytes").to_pylist()


def health_section(work: Path, files: int, repeats: int = 5) -> dict:
    path = work / "log-only"
    shutil.rmtree(path, ignore_errors=True)
    rng = np.random.default_rng(0)
    write_synthetic_log(path, rng.integers(10**4, 2 * 10**8, files), [str(i % 1000) for i in range(files)])
    ours, adds = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        h = table_health(str(path))
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pa.table(DeltaTable(str(path)).get_add_actions(flatten=True))
        adds.append(time.perf_counter() - t0)
    return {"files": h.stats.files, "partitions": len(h.partitions), "health_s": round(statistics.median(ours), 3),
            "deltalake_add_actions_s": round(statistics.median(adds), 3),
            "ratio": round(statistics.median(ours) / statistics.median(adds), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    ap.add_argument("--files", type=int, default=2000, help="tiny files in the lineitem table (default 2000)")
    ap.add_argument("--days", type=int, default=30, help="daily append cycles for write amplification")
    ap.add_argument("--repeats", type=int, default=3, help="query repetitions (median); 0 skips the queries")
    ap.add_argument("--health-files", type=int, default=100_000)
    ap.add_argument("--work", default=str(ROOT / "benchmarks" / "work" / "compaction"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "compaction.json"))
    ap.add_argument("--only", choices=("compaction", "write_amp", "health", "queries"), action="append",
                    help="sections to run (default: compaction, write_amp, health); queries: Q1/Q6 again, "
                         "--repeats times, on the tables a compaction run left in --work")
    ap.add_argument("--compactors", default=",".join(COMPACTORS),
                    help=f"comma-separated subset of {', '.join(COMPACTORS)} (default all)")
    args = ap.parse_args()
    work = Path(args.work).resolve()  # Spark resolves a relative delta.`path` against its warehouse, not here
    work.mkdir(parents=True, exist_ok=True)
    only = set(args.only or ("compaction", "write_amp", "health"))
    if "queries" in only and not args.repeats:
        ap.error("--only queries needs --repeats of at least 1")
    out_path = Path(args.out)
    header = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {_mem_gib()} GiB, no GPU",
              "scale": args.scale, "files": args.files}
    scale_key = f"scale_{args.scale:g}"

    def save(key: str, value: dict) -> None:
        # Read-modify-write at save time, so sections run in separate processes do not clobber each other; results
        # are kept per scale, and a file in the old flat form (one scale) moves under its own scale's key.
        result = json.loads(out_path.read_text()) if out_path.exists() else {}
        if "scale" in result:
            result = {f"scale_{float(result['scale']):g}": result}
        result.setdefault(scale_key, {}).update({**header, key: value})
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2) + "\n")

    if "health" in only:
        save("health_scan", health_section(work, args.health_files))
    spark = get_spark("pipeline_opt-bench-compaction") if only - {"health"} else None
    if "compaction" in only:
        compactors = tuple(c for c in args.compactors.split(",") if c)
        unknown = sorted(set(compactors) - set(COMPACTORS))
        if unknown:
            ap.error(f"--compactors: unknown {unknown}; choose from {', '.join(COMPACTORS)}")
        save("compaction", compaction_section(spark, work, args.scale, args.files, args.repeats, compactors))
    if "queries" in only:
        save("queries", queries_section(spark, work, args.repeats))
    if "write_amp" in only:
        save("write_amplification", write_amp_section(spark, work, args.scale, args.days,
                                                      on_day=lambda partial: save("write_amplification", partial)))
    print(out_path.read_text())


def _mem_gib() -> int:
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB)


if __name__ == "__main__":
    main()
