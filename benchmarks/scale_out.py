"""Scale-out benchmark: the same compaction on local[2] and on a 2-worker standalone cluster, the loader over an
S3 table (cold vs warm file cache), and bad object-store input.

    .venv/bin/python benchmarks/scale_out.py [--lakehouse demo-lakehouse] [--table lineitem]

Writes benchmarks/results/scale_out.json. Every Spark run is a separate driver application (same start-up cost on
both sides); the cluster is 2 workers × 1 core × 1 GiB on loopback, local[2] has the same 2 cores. The S3 store is
moto's standalone server on loopback (credentials enforced), so remote bytes are real HTTP transfers, not AWS
latencies.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline_opt.spark import cluster_confs  # noqa: E402
from pipeline_opt.storage import ObjectStore, StorageError, explain, preflight  # noqa: E402
from tests.harness.driver_process import driver_args, run_json  # noqa: E402
from tests.harness.moto_server import MotoServer  # noqa: E402
from tests.harness.standalone import StandaloneCluster  # noqa: E402

NUMERIC = ["l_orderkey", "l_partkey", "l_suppkey", "l_linenumber", "l_quantity", "l_extendedprice",
           "l_discount", "l_tax"]


def drive(master: str, steps: list[dict], store: ObjectStore | None = None, conf: dict | None = None) -> dict:
    env = store.to_env() if store is not None else {}
    start = time.perf_counter()
    out = run_json(driver_args(master, steps, conf), env=env, timeout_s=1800)
    return {**out, "wall_s": round(time.perf_counter() - start, 2)}


def compaction(source: Path, work: Path, cluster: StandaloneCluster, store: ObjectStore, s3_uri: str) -> dict:
    runs = {}
    for name, master, conf in (("local[2]", "local[2]", {}),
                               ("standalone 2 workers", cluster.master_url,
                                cluster_confs(executor_memory="768m", driver_host="127.0.0.1"))):
        path = work / name.replace(" ", "_").replace("[", "").replace("]", "")
        shutil.copytree(source, path)
        steps = [{"op": "executors"}, {"op": "health", "path": str(path)}, {"op": "compact", "path": str(path)},
                 {"op": "health", "path": str(path)}, {"op": "fingerprint", "path": str(path)}]
        if master != "local[2]":  # the cluster also publishes the compacted table to S3 for the loader part
            steps.append({"op": "copy", "src": str(path), "dest": s3_uri, "partition_by": ["l_shipyear"]})
        out = drive(master, steps, store if master != "local[2]" else None, conf)
        executors, before, compacted, after, fingerprint = out["steps"][:5]
        runs[name] = {"executors": executors["executors"], "app_wall_s": out["wall_s"],
                      "compact_s": out["seconds"][2], "files_before": before["stats"]["files"],
                      "files_after": after["stats"]["files"], "rows": after["stats"]["rows"],
                      "bytes_rewritten": compacted["bytes_rewritten"], "verified": compacted["verified"],
                      "fingerprint": {k: fingerprint[k] for k in ("rows", "row_checksum")},
                      "column_checksums": [c["checksum"] for c in fingerprint["columns"]]}
    local, remote = runs["local[2]"], runs["standalone 2 workers"]
    return {"runs": runs, "identical_contents": local["fingerprint"] == remote["fingerprint"]
            and local["column_checksums"] == remote["column_checksums"],
            "cluster_over_local_compact_time": round(remote["compact_s"] / local["compact_s"], 3)}


def loader_epochs(uri: str, store: ObjectStore, cache_dir: Path) -> dict:
    from pipeline_opt.loader import DeltaDataset, DeltaLoader, FileCache

    def epoch(loader) -> dict:
        start = time.perf_counter()
        rows = sum(len(b["l_orderkey"]) for b in loader)
        return {"seconds": round(time.perf_counter() - start, 3), "rows": rows, **loader.io_stats()}

    opts = store.storage_options()
    plain = DeltaLoader(DeltaDataset(uri, columns=NUMERIC, batch_size=8192, storage_options=opts))
    cache = FileCache(cache_dir, "1GB")
    cached = DeltaLoader(DeltaDataset(uri, columns=NUMERIC, batch_size=8192, storage_options=opts,
                                      file_cache=cache))
    table_bytes = sum(f.size for f in cached.dataset.snapshot.files)
    no_cache, cold, warm = epoch(plain), epoch(cached), epoch(cached)
    return {"table": uri, "table_bytes": table_bytes, "files": len(cached.dataset.snapshot.files),
            "cache_budget_bytes": cache.capacity_bytes, "no_cache": no_cache, "cold": cold, "warm": warm,
            "warm_over_cold_bytes": round(warm["bytes_fetched"] / max(cold["bytes_fetched"], 1), 4),
            "warm_over_cold_time": round(warm["seconds"] / cold["seconds"], 3),
            "goal_warm_bytes_at_most_5pct": warm["bytes_fetched"] <= 0.05 * cold["bytes_fetched"]}


def bad_input(server: MotoServer, store: ObjectStore) -> list[dict]:
    import pyarrow as pa
    from deltalake import write_deltalake

    from tests.harness.driver_process import free_port

    cases = [("unreachable endpoint", ObjectStore(endpoint=f"http://127.0.0.1:{free_port()}", access_key_id="AK",
                                                  secret_access_key="SK", connect_timeout_s=1, attempts=1),
              "s3://lake/bad"),
             ("wrong credentials", store.with_credentials(store.access_key_id, "wrong-secret"), "s3://lake/bad"),
             ("missing bucket", store, "s3://no-such-bucket/bad")]
    out = []
    for name, bad, uri in cases:
        keys = server.keys()
        start = time.perf_counter()
        try:
            preflight(uri, bad)
            error = None
        except StorageError as e:
            error = e
        seconds = round(time.perf_counter() - start, 3)
        try:
            write_deltalake(uri, pa.table({"a": [1]}), storage_options=bad.storage_options())
            later = None
        except Exception as e:  # noqa: BLE001 - the point is which clear error it maps to
            later = explain(e, uri, bad)
        out.append({"case": name, "error": type(error).__name__, "message": str(error), "seconds": seconds,
                    "delta_rs_error_maps_to": type(later).__name__, "nothing_written": server.keys() == keys})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lakehouse", default="demo-lakehouse")
    parser.add_argument("--table", default="lineitem")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "scale_out.json"))
    args = parser.parse_args()
    source = Path(args.lakehouse) / args.table
    result = {"machine": f"{platform.node()}: 2 cores, 24 GiB, no GPU", "table": args.table,
              "lakehouse": Path(args.lakehouse).name}
    with tempfile.TemporaryDirectory(prefix="scale_out_") as tmp:
        work = Path(tmp)
        server = MotoServer(work, buckets=("lake",))
        store = server.start()
        try:
            with StandaloneCluster(work / "cluster", workers=2, cores=1, memory="1g") as cluster:
                s3_uri = f"s3a://lake/{args.table}"
                result["compaction"] = compaction(source, work, cluster, store, s3_uri)
            result["loader_s3"] = loader_epochs(s3_uri.replace("s3a://", "s3://"), store, work / "file-cache")
            result["bad_input"] = bad_input(server, store)
        finally:
            server.stop()
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
