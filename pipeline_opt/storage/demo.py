"""Scale-out demo: a demo table on a local S3 server, read by the loader through its file cache, with the clear
errors and the writer lease of the object-store layer. No Spark cluster (that takes longer than a demo should; see
``benchmarks/scale_out.py``)."""
from __future__ import annotations

import time
from pathlib import Path

from pipeline_opt.storage import ConcurrentWriterError, ObjectStore, StorageError, WriterLease, preflight

TABLE = "customer"
COLUMNS = ["c_custkey", "c_nationkey", "c_acctbal"]


def _upload(lakehouse: Path, uri: str, store: ObjectStore, pieces: int = 8) -> int:
    from deltalake import DeltaTable, write_deltalake

    table = DeltaTable(str(lakehouse / TABLE)).to_pyarrow_table(columns=COLUMNS)
    step = -(-table.num_rows // pieces)
    for start in range(0, table.num_rows, step):  # several commits → several data files
        write_deltalake(uri, table.slice(start, step), mode="append", storage_options=store.storage_options())
    return table.num_rows


def _epochs(uri: str, store: ObjectStore, cache_dir: Path) -> dict:
    from pipeline_opt.loader import DeltaDataset, DeltaLoader, FileCache

    loader = DeltaLoader(DeltaDataset(uri, columns=COLUMNS, batch_size=4096, storage_options=store.storage_options(),
                                      file_cache=FileCache(cache_dir, "256MB")))
    out = {}
    for name in ("cold", "warm"):
        start = time.perf_counter()
        rows = sum(len(b["c_custkey"]) for b in loader)
        out[name] = {"rows": rows, "seconds": round(time.perf_counter() - start, 3), **loader.io_stats()}
    return out


def _bad_inputs(store: ObjectStore) -> dict:
    from pipeline_opt.cluster import free_port

    cases = {"unreachable endpoint": (ObjectStore(endpoint=f"http://127.0.0.1:{free_port()}", access_key_id="a",
                                                  secret_access_key="b", connect_timeout_s=1, attempts=1), "lake"),
             "wrong credentials": (store.with_credentials(store.access_key_id, "wrong"), "lake"),
             "missing bucket": (store, "no-such-bucket")}
    errors = {}
    for name, (bad, bucket) in cases.items():
        try:
            preflight(f"s3://{bucket}/{TABLE}", bad)
            errors[name] = "no error"
        except StorageError as e:
            errors[name] = f"{type(e).__name__}: {e}"
    return errors


def run(lakehouse: Path, out: Path) -> dict:
    """Upload the demo ``customer`` table to a local S3 server and show the loader, errors and lease on it."""
    from pipeline_opt.storage.local_server import MotoServer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    uri = f"s3://lake/{TABLE}"
    with MotoServer(out) as store:
        rows = _upload(Path(lakehouse), uri, store)
        epochs = _epochs(uri, store, out / "file-cache")
        with WriterLease(uri, store, owner="demo-writer"):
            try:
                WriterLease(uri, store, owner="second-writer").acquire()
                lease = "second writer was NOT refused"
            except ConcurrentWriterError as e:
                lease = str(e)[:160]
        return {"table": uri, "rows": rows, "cold_bytes_fetched": epochs["cold"]["bytes_fetched"],
                "warm_bytes_fetched": epochs["warm"]["bytes_fetched"], "warm_cache_hits": epochs["warm"]["cache_hits"],
                "cold_s": epochs["cold"]["seconds"], "warm_s": epochs["warm"]["seconds"],
                "bad_input": _bad_inputs(store), "second_writer": lease}
