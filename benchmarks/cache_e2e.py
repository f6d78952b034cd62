"""End to end: two loaders over two demo tables on an S3 server, one local file cache of half their bytes.

Run: .venv/bin/python benchmarks/cache_e2e.py [--epochs 4] [--lakehouse demo-lakehouse] [--build]
     → benchmarks/results/cache_e2e.json

The demo lakehouse's ``lineitem`` and ``orders`` (``make demo``; with ``--build``, a missing lakehouse is generated
first by the demo's own generator, ``app.demo.lakehouse.generate``, at ``--scale``) are copied file by file into a
local moto S3 server (``tests/harness/moto_server.py``). Two shuffled ``DeltaDataset``s read them through one
``FileCache`` whose budget is half of both tables' bytes, their batches interleaved in one process, for several
epochs: once with LRU, once with ``planned`` (the loaders announce each epoch's order and the next one's). Reported
per epoch: bytes fetched from the S3 server (data files and deletion vectors), cache hits, wall time. The
``planned`` run is recorded (``FileCache(record=...)``) and the recorded trace is replayed through every policy
beside the offline bound.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline_opt.cache.simulate import simulate  # noqa: E402
from pipeline_opt.cache.workload import read_record  # noqa: E402
from pipeline_opt.delta import read_snapshot  # noqa: E402
from tests.harness.moto_server import MotoServer  # noqa: E402

TABLES = ("lineitem", "orders")
COLUMNS = {"lineitem": ["l_orderkey", "l_quantity"], "orders": ["o_orderkey", "o_totalprice"]}
REPLAY_POLICIES = ["lru", "arc", "s3fifo", "sieve", "learned", "keep_resident", "planned"]


def upload(store, lakehouse: Path, bucket: str = "lake") -> dict:
    """Copies each table folder (log, data files, deletion vectors) to ``s3://bucket/<table>``; returns sizes."""
    client = store.boto3_client()
    out = {}
    for table in TABLES:
        folder = lakehouse / table
        files = [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".crc")]
        for p in files:
            client.upload_file(str(p), bucket, f"{table}/{p.relative_to(folder).as_posix()}")
        snap = read_snapshot(str(folder))
        out[table] = {"objects": len(files), "data_files": len(snap.files), "bytes": snap.table_bytes}
    return out


def run(store, policy: str, budget: int, epochs: int, work: Path, record: Path | None) -> list[dict]:
    from pipeline_opt.loader import DeltaDataset, DeltaLoader, FileCache

    folder = work / f"cache-{policy}"
    shutil.rmtree(folder, ignore_errors=True)
    cache = FileCache(folder, budget, policy=policy, record=record)
    loaders = {t: DeltaLoader(DeltaDataset(f"s3://lake/{t}", columns=COLUMNS[t], batch_size=8192, shuffle=True,
                                           seed=i, storage_options=store.storage_options(), file_cache=cache))
               for i, t in enumerate(TABLES)}
    per_epoch = []
    for epoch in range(epochs):
        started = time.perf_counter()
        running = {t: iter(loader) for t, loader in loaders.items()}
        rows = dict.fromkeys(TABLES, 0)
        while running:  # the two loaders' batches interleave, as two jobs sharing the cache would
            for t, it in list(running.items()):
                batch = next(it, None)
                if batch is None:
                    del running[t]
                else:
                    rows[t] += len(next(iter(batch.values())))
        stats = {t: loader.io_stats() for t, loader in loaders.items()}
        per_epoch.append({"epoch": epoch, "seconds": round(time.perf_counter() - started, 2), "rows": rows,
                          "bytes_fetched": sum(s["bytes_fetched"] for s in stats.values()),
                          "cache_hits": sum(s["cache_hits"] for s in stats.values()),
                          "cache_misses": sum(s["cache_misses"] for s in stats.values()),
                          "per_table": stats, "disk_bytes": cache.disk_bytes()})
        assert cache.disk_bytes() <= budget, "the file cache exceeded its budget"
        print(f"{policy} epoch {epoch}: {per_epoch[-1]['bytes_fetched']:,} B fetched, "
              f"{per_epoch[-1]['seconds']} s", flush=True)
    return per_epoch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lakehouse", default=str(ROOT / "demo-lakehouse"))
    ap.add_argument("--build", action="store_true", help="generate the demo lakehouse there if it is missing")
    ap.add_argument("--scale", type=float, default=0.1, help="TPC-H scale of a generated lakehouse (the demo's)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cache_e2e.json"))
    args = ap.parse_args()
    lakehouse = Path(args.lakehouse)
    built = None
    if args.build and not lakehouse.exists():
        from pipeline_opt.app.demo.lakehouse import generate

        started = time.perf_counter()
        generate(lakehouse, args.scale)
        built = {"scale": args.scale, "seconds": round(time.perf_counter() - started, 1)}
    if not all((lakehouse / t / "_delta_log").is_dir() for t in TABLES):
        print(f"{lakehouse} lacks {TABLES}: run `make demo` first, or pass --build", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp, MotoServer(Path(tmp), buckets=("lake",)) as store:
        work = Path(tmp)
        started = time.perf_counter()
        tables = upload(store, lakehouse)
        upload_s = round(time.perf_counter() - started, 1)
        budget = sum(t["bytes"] for t in tables.values()) // 2
        record = work / "planned.record.jsonl"
        runs = {p: run(store, p, budget, args.epochs, work, record if p == "planned" else None)
                for p in ("lru", "planned")}
        trace = read_record(record, "recorded run: two loaders, planned")
        replay = simulate(trace, REPLAY_POLICIES, [budget / trace.working_set_bytes])
    lru, planned = ([e["bytes_fetched"] for e in runs[p]] for p in ("lru", "planned"))
    result = {
        "machine": "2-core, 24 GiB Linux VM, no GPU (shared with other jobs); moto S3 server on loopback",
        "date": time.strftime("%Y-%m-%d"), "lakehouse_built": built, "tables": tables, "upload_seconds": upload_s,
        "budget_bytes": budget,
        "epochs": args.epochs, "runs": runs,
        "bytes_fetched_per_epoch": {"lru": lru, "planned": planned},
        "planned_over_lru_per_epoch": [round(p / max(q, 1), 3) for p, q in zip(planned, lru)],
        "planned_over_lru_after_first_epoch": round(sum(planned[1:]) / max(sum(lru[1:]), 1), 3),
        "recorded_replay": {"requests": len(trace), "announcements": len(trace.announcements),
                            "results": [{"policy": r.policy, "byte_miss_ratio": r.byte_miss_ratio}
                                        for r in replay.results],
                            "bound": replay.bound[0].byte_miss_ratio},
    }
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("bytes_fetched_per_epoch", "planned_over_lru_per_epoch",
                                             "planned_over_lru_after_first_epoch")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
