"""Showcase of the loader: one shuffled epoch of the demo lineitem's numeric columns through two worker processes.

Returns the facts a reader checks: rows delivered equal the snapshot's live rows (deletion vectors applied), the
batch count, throughput, and the state dict size a checkpoint would carry.
"""
from __future__ import annotations

import json
import time

from pipeline_opt.app.demo.inputs import DemoInputs

NUMERIC = ["l_orderkey", "l_partkey", "l_suppkey", "l_linenumber", "l_quantity", "l_extendedprice", "l_discount",
           "l_tax"]


def run(inputs: DemoInputs) -> dict:
    from pipeline_opt.loader import DeltaDataset, DeltaLoader

    started = time.perf_counter()
    ds = DeltaDataset(inputs.lakehouse / "lineitem", columns=NUMERIC, batch_size=8192, shuffle=True, seed=0)
    loader = DeltaLoader(ds, num_workers=2)
    rows = batches = 0
    for batch in loader:
        rows += len(batch["l_orderkey"])
        batches += 1
    seconds = time.perf_counter() - started
    facts = ds.facts()
    result = {"table_version": ds.version, "files": facts["files"], "live_rows": facts["total_rows"],
              "rows": rows, "batches": batches, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds),
              "state_dict_bytes": len(json.dumps(loader.state_dict()))}
    inputs.out.mkdir(parents=True, exist_ok=True)
    (inputs.out / "loader_demo.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
