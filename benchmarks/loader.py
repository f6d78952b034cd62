"""Loader benchmark: Delta → torch throughput vs a raw pyarrow scan and HF ``datasets``, memory vs table size, and
time to first batch on a 10,000-file table.

Usage: .venv/bin/python benchmarks/loader.py --lakehouse demo-lakehouse [--repeats 3] [--skip-hf]
Writes benchmarks/results/loader.json. All throughput cases run in one process, interleaved round by round over the
same snapshot files with a warm page cache, so their ratios hold on a noisy machine; each case reports its best
round (max rows/s) and the median. The anchor script (``--anchor``, cases prefixed ``anchor:``) runs in the same
job on a folder of links to the same snapshot files. Bigger tables are built under benchmarks/work/ (gitignored).
The side-by-side run against the loader's peers (Ray Data, polars, torchdata, HF ``datasets``) is loader_peers.py.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds

ROOT = Path(__file__).resolve().parent
COLS = ["l_orderkey", "l_partkey", "l_suppkey", "l_linenumber", "l_quantity", "l_extendedprice", "l_discount", "l_tax"]
BATCH = 8192


def snapshot_paths(table: str) -> list:
    from pipeline_opt.delta import read_snapshot

    snap = read_snapshot(table)
    return [snap.file_uri(f).removeprefix("file://") for f in snap.files]


# -- throughput cases ------------------------------------------------------------------------------------------
def case_pyarrow_scan(table, paths):
    d = pds.dataset(paths, format="parquet")
    return sum(b.num_rows for b in d.to_batches(columns=COLS, batch_size=65536))


def case_pyarrow_to_torch(table, paths):
    import torch

    d, rows = pds.dataset(paths, format="parquet"), 0
    for b in d.to_batches(columns=COLS, batch_size=65536):
        t = {c: torch.from_numpy(_num(b.column(c))) for c in COLS}
        rows += len(t[COLS[0]])
    return rows


def _num(a):
    return (pc.cast(a, pa.float64()) if pa.types.is_decimal(a.type) else a).to_numpy(zero_copy_only=False)


def loader_case(workers: int, shuffle: bool):
    def run(table, paths):
        from pipeline_opt.loader import DeltaDataset, DeltaLoader

        ds = DeltaDataset(table, columns=COLS, batch_size=BATCH, shuffle=shuffle, seed=0)
        return sum(len(b[COLS[0]]) for b in DeltaLoader(ds, num_workers=workers))
    return run


def case_hf_datasets(table, paths):
    import datasets
    from datasets import load_dataset

    it = load_dataset("parquet", data_files=paths, split="train", streaming=True).select_columns(COLS)
    feats = datasets.Features({c: datasets.Value("float64" if "decimal" in str(f) else f.dtype)
                               for c, f in it.features.items()})
    it, rows = it.cast(feats).with_format("torch"), 0
    for batch in it.iter(batch_size=65536):
        rows += len(batch[COLS[0]])
    return rows


def timed(fn, *args) -> dict:
    cpu0, t0 = _cpu(), time.perf_counter()
    rows = fn(*args)
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    return {"rows": rows, "s": round(wall, 3), "cpu_s": round(cpu, 3), "rows_per_s": round(rows / wall)}


def _cpu() -> float:
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def throughput(table: str, repeats: int, skip_hf: bool) -> dict:
    paths = snapshot_paths(table)
    cases = {"pyarrow_scan": case_pyarrow_scan, "pyarrow_to_torch": case_pyarrow_to_torch,
             "loader_shuffle_w0": loader_case(0, True), "loader_shuffle_w2": loader_case(2, True),
             "loader_noshuffle_w0": loader_case(0, False)}
    case_pyarrow_scan(table, paths)  # warm the page cache
    runs = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            runs[name].append(timed(fn, table, paths))
            print(name, runs[name][-1], flush=True)
    if not skip_hf:
        runs["hf_datasets_streaming"] = [timed(case_hf_datasets, table, paths)]
        print("hf_datasets_streaming", runs["hf_datasets_streaming"][-1], flush=True)
    return {name: _summary(r) for name, r in runs.items()}


def _summary(runs: list) -> dict:
    return {"rows": runs[0]["rows"], "best_rows_per_s": max(r["rows_per_s"] for r in runs),
            "median_rows_per_s": round(statistics.median(r["rows_per_s"] for r in runs)),
            "median_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3), "runs": runs}


def shuffle_quality_on(table: str) -> dict:
    """Rank correlation between delivered and stored order of (l_orderkey, l_linenumber) for one shuffled epoch."""
    import torch

    from pipeline_opt.loader import DeltaDataset, DeltaLoader, shuffle_quality

    def keys(shuffle):
        ds = DeltaDataset(table, columns=["l_orderkey", "l_linenumber"], batch_size=BATCH, shuffle=shuffle)
        return torch.cat([b["l_orderkey"] * 8 + b["l_linenumber"] for b in DeltaLoader(ds)]).numpy()

    stored, delivered = keys(False), keys(True)
    order = np.argsort(stored)
    positions = order[np.searchsorted(stored[order], delivered)]
    return shuffle_quality(positions)


# -- anchor --------------------------------------------------------------------------------------------------------
def run_anchor(anchor: Path, paths: list, work: Path, skip_hf: bool) -> list:
    """Run the anchor script on a folder of links to exactly the snapshot's files; returns its JSON lines."""
    folder = work / "anchor_files"
    if folder.exists():
        for p in folder.iterdir():
            p.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(paths):
        os.symlink(p, folder / f"{i:06d}.parquet")
    if skip_hf:
        return [{"case": "anchor skipped (needs datasets)"}]
    done = subprocess.run([sys.executable, str(anchor), str(folder)], capture_output=True, text=True, timeout=900)
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    return [{**x, "case": "anchor:" + x["case"]} for x in lines] or [{"error": done.stderr[-500:]}]


# -- memory and first batch (each in a fresh process) -------------------------------------------------------------
def build_copies(source: str, work: Path, factors) -> dict:
    """Delta tables holding the lineitem numeric columns ``k`` times (appended copies), written by delta-rs."""
    from deltalake import write_deltalake

    data = pds.dataset(snapshot_paths(source), format="parquet").to_table(columns=COLS)
    data = pa.table({c: _num(data.column(c).combine_chunks()) for c in COLS})
    out = {}
    for k in factors:
        path = work / f"lineitem_x{k}"
        if not (path / "_delta_log").exists():
            for _ in range(k):
                write_deltalake(str(path), data, mode="append", target_file_size=4 << 20)
        out[k] = str(path)
    return out


def build_many_files(work: Path, files: int = 10_000, rows_per_file: int = 100) -> str:
    """A Delta table of ``files`` data files in one commit (delta-rs writes one file per partition value)."""
    from deltalake import write_deltalake

    path = work / f"files_{files}"
    if not (path / "_delta_log").exists():
        n = files * rows_per_file
        ids = np.arange(n, dtype=np.int64)
        table = pa.table({"part": ids % files, **{c: ids * (i + 1) for i, c in enumerate(COLS)}})
        write_deltalake(str(path), table, partition_by=["part"])
    return str(path)


def _tree_rss(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS"))
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            pass
    return total


def peak_rss(table: str, workers: int) -> dict:
    """Peak RSS of a fresh process (plus its workers) streaming one shuffled epoch of ``table``."""
    code = ("import sys; from pipeline_opt.loader import DeltaDataset, DeltaLoader; "
            f"ds = DeltaDataset(sys.argv[1], batch_size={BATCH}, shuffle=True); "
            f"print(sum(len(b['l_orderkey']) for b in DeltaLoader(ds, num_workers={workers})))")
    proc = subprocess.Popen([sys.executable, "-c", code, table], stdout=subprocess.PIPE, text=True)
    peak, stop = [0], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, _ = proc.communicate(timeout=900)
    stop.set()
    sampler.join()
    return {"rows": int(out.strip().splitlines()[-1]), "peak_rss_bytes": peak[0]}


def first_batch(table: str, workers: int) -> dict:
    code = ("import time, sys, json; t0 = time.perf_counter(); "
            "from pipeline_opt.loader import DeltaDataset, DeltaLoader; t1 = time.perf_counter(); "
            f"ds = DeltaDataset(sys.argv[1], batch_size={BATCH}, shuffle=True); t2 = time.perf_counter(); "
            f"b = next(iter(DeltaLoader(ds, num_workers={workers}))); t3 = time.perf_counter(); "
            "print(json.dumps({'files': len(ds.snapshot.files), 'import_s': t1 - t0, 'snapshot_and_plan_s': t2 - t1, "
            "'first_batch_s': t3 - t2, 'time_to_first_batch_s': t3 - t1, 'batch_rows': len(b['l_orderkey'])}))")
    done = subprocess.run([sys.executable, "-c", code, table], capture_output=True, text=True, timeout=900)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lakehouse", required=True, help="demo lakehouse folder (holds lineitem/)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-hf", action="store_true", help="skip Hugging Face datasets (not installed)")
    ap.add_argument("--anchor", default=None, help="anchor script to run beside the cases (optional)")
    ap.add_argument("--memory-base", type=int, default=4, help="lineitem copies in the 1x memory table")
    ap.add_argument("--work", default=str(ROOT / "work"))
    ap.add_argument("--out", default=str(ROOT / "results" / "loader.json"))
    args = ap.parse_args(argv)
    table, work = str(Path(args.lakehouse) / "lineitem"), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                          "pyarrow": pa.__version__}, "table": "lineitem (demo lakehouse)", "columns": COLS,
              "batch_size": BATCH}
    result["throughput"] = throughput(table, args.repeats, args.skip_hf)
    t = result["throughput"]
    result["ratios"] = {
        "loader_shuffle_w0_vs_pyarrow_scan": round(t["loader_shuffle_w0"]["best_rows_per_s"]
                                                   / t["pyarrow_scan"]["best_rows_per_s"], 3),
        "loader_shuffle_w2_vs_pyarrow_scan": round(t["loader_shuffle_w2"]["best_rows_per_s"]
                                                   / t["pyarrow_scan"]["best_rows_per_s"], 3),
        "loader_shuffle_w0_vs_pyarrow_scan_median": round(t["loader_shuffle_w0"]["median_rows_per_s"]
                                                          / t["pyarrow_scan"]["median_rows_per_s"], 3)}
    per_cpu = {k: v["rows"] / v["median_cpu_s"] for k, v in t.items() if v["median_cpu_s"]}
    result["ratios"]["loader_shuffle_w0_vs_pyarrow_scan_per_cpu_second"] = round(
        per_cpu["loader_shuffle_w0"] / per_cpu["pyarrow_scan"], 3)
    if "hf_datasets_streaming" in t:
        result["ratios"]["loader_shuffle_w0_vs_hf_datasets_per_cpu_second"] = round(
            per_cpu["loader_shuffle_w0"] / per_cpu["hf_datasets_streaming"], 1)
        result["ratios"]["loader_shuffle_w0_vs_hf_datasets"] = round(
            t["loader_shuffle_w0"]["best_rows_per_s"] / t["hf_datasets_streaming"]["best_rows_per_s"], 1)
    if args.anchor:
        result["anchor"] = run_anchor(Path(args.anchor), snapshot_paths(table), work, args.skip_hf)
    result["shuffle_quality"] = shuffle_quality_on(table)
    base = args.memory_base  # 1x = this many appended copies of lineitem, so the table dwarfs the batches in flight
    copies = build_copies(table, work, (base, 2 * base, 4 * base))
    result["memory"] = {f"{k // base}x": {**peak_rss(p, 2), "table_bytes": _table_bytes(p),
                                          "decoded_bytes": _decoded_bytes(p)} for k, p in copies.items()}
    base = result["memory"]["1x"]["peak_rss_bytes"]
    result["memory_growth_4x_vs_1x"] = round(result["memory"]["4x"]["peak_rss_bytes"] / base, 3)
    result["first_batch_10k_files"] = {f"w{w}": first_batch(build_many_files(work), w) for w in (0, 2)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("ratios", "shuffle_quality", "memory_growth_4x_vs_1x",
                                              "first_batch_10k_files")}, indent=2))
    return result


def _decoded_bytes(path: str) -> int:
    """Bytes the table's rows take as 8-byte tensors (what a loader that materialised the table would hold)."""
    from pipeline_opt.delta import read_snapshot

    snap = read_snapshot(path)
    return snap.num_rows * 8 * len(snap.schema)


def _table_bytes(path: str) -> int:
    from deltalake import DeltaTable

    return int(sum(pa.table(DeltaTable(path).get_add_actions()).column("size_bytes").to_pylist()))


if __name__ == "__main__":
    main()
