"""Showcase of the cache part on the demo lakehouse's own workload: loader epochs over ``lineitem``'s files in
their seeded shuffled order, with a scan of ``orders`` after each epoch (the nightly maintenance read), replayed
through LRU, S3-FIFO and ``learned`` under a budget of a third of the working set."""
from __future__ import annotations

import numpy as np

from pipeline_opt.app.demo.inputs import DemoInputs
from pipeline_opt.cache.simulate import simulate
from pipeline_opt.cache.trace import Trace
from pipeline_opt.delta import read_snapshot
from pipeline_opt.loader.shuffle import file_order

EPOCHS = 3
POLICIES = ["lru", "s3fifo", "learned"]
BUDGET_SHARE = 1 / 3


def workload(inputs: DemoInputs, epochs: int = EPOCHS) -> Trace:
    """The file-level request stream (ids dense over both tables' files, sizes from their Delta logs)."""
    lineitem = read_snapshot(str(inputs.lakehouse / "lineitem"))
    orders = read_snapshot(str(inputs.lakehouse / "orders"))
    sizes = np.concatenate([lineitem.sizes, orders.sizes])
    scan = np.arange(len(lineitem.sizes), len(sizes))
    keys = np.concatenate([np.concatenate([file_order(len(lineitem.sizes), 0, e, True), scan])
                           for e in range(epochs)]).astype(np.int64)
    return Trace("demo lakehouse: loader epochs + nightly scans", np.arange(len(keys), dtype=np.uint64), keys,
                 sizes[keys].astype(np.int64))


def run(inputs: DemoInputs) -> dict:
    trace = workload(inputs)
    report = simulate(trace, POLICIES, [BUDGET_SHARE])
    facts: dict = {"workload": trace.name, "requests": len(trace), "epochs": EPOCHS,
                   "cache_fraction_of_working_set": round(BUDGET_SHARE, 3)}
    for r in report.results:
        facts[f"{r.policy}_byte_miss_ratio"] = round(r.byte_miss_ratio, 4)
    facts["offline_bound_byte_miss_ratio"] = round(float(report.bound[0].byte_miss_ratio), 4)
    return facts
