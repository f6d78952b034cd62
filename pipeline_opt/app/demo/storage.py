"""Showcase of object storage: a demo table uploaded to the S3 store the environment names, read by the loader
through its file cache, with the clear errors and the writer lease of the object-store layer. No Spark cluster (that
takes longer than a demo should; see ``benchmarks/scale_out.py``).

Invariant: runs only against a store the caller gives (``demo --s3 s3://bucket/prefix`` with ``AWS_*`` settings;
``make demo`` starts a local S3 server for it) and writes only under that prefix; without one it says so and
skips.
"""
from __future__ import annotations

import shutil
import socket
import time
import uuid
from pathlib import Path

from pipeline_opt.app.demo.inputs import DemoInputs
from pipeline_opt.storage import (
    ConcurrentWriterError,
    ObjectStore,
    StorageError,
    WriterLease,
    bucket_and_key,
    preflight,
)

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


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bad_inputs(store: ObjectStore, bucket: str) -> dict:
    unreachable = ObjectStore(endpoint=f"http://127.0.0.1:{_closed_port()}", access_key_id="a",
                              secret_access_key="b", connect_timeout_s=1, attempts=1)
    cases = {"unreachable endpoint": (unreachable, bucket),
             "wrong credentials": (store.with_credentials(store.access_key_id or "demo", "wrong"), bucket),
             "missing bucket": (store, f"no-such-bucket-{uuid.uuid4().hex[:12]}")}
    errors = {}
    for name, (bad, where) in cases.items():
        try:
            preflight(f"s3://{where}/{TABLE}", bad)
            errors[name] = "no error"
        except StorageError as e:
            errors[name] = f"{type(e).__name__}: {e}"
    return errors


def run(inputs: DemoInputs) -> dict:
    """Upload the demo ``customer`` table under ``inputs.s3`` and show the loader, errors and lease on it."""
    if not inputs.s3:
        return {"skipped": "no object store given: run `pipeline-opt demo --s3 s3://bucket/prefix` with AWS_* "
                           "settings (make demo starts a local S3 server for it)"}
    store = ObjectStore.from_env()
    bucket, prefix = bucket_and_key(inputs.s3)
    uri = f"s3://{bucket}/{prefix + '/' if prefix else ''}{TABLE}-{uuid.uuid4().hex[:8]}"
    preflight(uri, store)
    rows = _upload(inputs.lakehouse, uri, store)
    shutil.rmtree(inputs.out / "file-cache", ignore_errors=True)  # the cold epoch starts from an empty cache
    epochs = _epochs(uri, store, inputs.out / "file-cache")
    with WriterLease(uri, store, owner="demo-writer"):
        try:
            WriterLease(uri, store, owner="second-writer").acquire()
            lease = "second writer was NOT refused"
        except ConcurrentWriterError as e:
            lease = str(e)[:160]
    return {"table": uri, "rows": rows, "cold_bytes_fetched": epochs["cold"]["bytes_fetched"],
            "warm_bytes_fetched": epochs["warm"]["bytes_fetched"], "warm_cache_hits": epochs["warm"]["cache_hits"],
            "cold_s": epochs["cold"]["seconds"], "warm_s": epochs["warm"]["seconds"],
            "bad_input": _bad_inputs(store, bucket), "second_writer": lease}
