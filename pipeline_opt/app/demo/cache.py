"""Showcase of the cache part on the demo lakehouse's own workload: loader epochs over ``lineitem``'s files in
their seeded shuffled order, with a scan of ``orders`` after each epoch (the nightly maintenance read).

Two parts, both from the lakehouse alone (no file from outside the repository):
- the simulated run: that request stream, with the plans the product knows (each epoch's order and the next one's
  from the loader, each night's scan from the schedule), replayed through LRU, S3-FIFO, ``learned``,
  keep-resident and ``planned`` under half the working set, beside the offline bound;
- a real run: shuffled loaders over ``orders`` and ``customer`` (those of them the lakehouse has) reading through
  one local file cache of half their bytes, ``planned`` against LRU: bytes read from storage per epoch.
"""
from __future__ import annotations

import shutil

import numpy as np

from pipeline_opt.app.demo.inputs import DemoInputs
from pipeline_opt.cache.simulate import simulate
from pipeline_opt.cache.workload import Announcement, Workload
from pipeline_opt.delta import read_snapshot
from pipeline_opt.loader.shuffle import file_order

EPOCHS = 3
POLICIES = ["lru", "s3fifo", "learned", "keep_resident", "planned"]
BUDGET_SHARE = 0.5
REAL_EPOCHS = 3


def workload(inputs: DemoInputs, epochs: int = EPOCHS) -> Workload:
    """The file-level request stream (ids dense over both tables' files, sizes from their Delta logs) and its plans."""
    lineitem = read_snapshot(str(inputs.lakehouse / "lineitem"))
    orders = read_snapshot(str(inputs.lakehouse / "orders"))
    n = len(lineitem.sizes)
    sizes = np.concatenate([lineitem.sizes, orders.sizes]).astype(np.int64)
    scan = list(range(n, len(sizes)))
    orders_of = [file_order(n, 0, e, True).tolist() for e in range(epochs + 1)]
    keys: list = []
    anns = []
    for e in range(epochs):
        anns.append(Announcement(len(keys), 0, orders_of[e] + (orders_of[e + 1] if e + 1 < epochs else [])))
        anns.append(Announcement(len(keys), 1 + e, scan, n))  # the schedule: tonight's scan, after the epoch
        keys += orders_of[e] + scan
    k = np.array(keys, np.int64)
    sources = ["loader:lineitem", *(f"nightly:orders#{e}" for e in range(epochs))]
    who = np.concatenate([np.r_[np.zeros(n, np.int64), np.full(len(scan), 1 + e)] for e in range(epochs)])
    return Workload("demo lakehouse: loader epochs + nightly scans", np.arange(len(k), dtype=np.uint64), k, sizes[k],
                    ["lineitem", "orders"], np.r_[np.zeros(n, np.int64), np.ones(len(scan), np.int64)], [], sources,
                    who, anns, sizes)


def simulated(inputs: DemoInputs) -> dict:
    trace = workload(inputs)
    report = simulate(trace, POLICIES, [BUDGET_SHARE])
    total = int(trace.sizes.sum())
    facts: dict = {"workload": trace.name, "requests": len(trace), "epochs": EPOCHS,
                   "cache_fraction_of_working_set": round(BUDGET_SHARE, 3)}
    for r in report.results:
        facts[f"{r.policy}_byte_miss_ratio"] = round(r.byte_miss_ratio, 4)
    facts["offline_bound_byte_miss_ratio"] = round(float(report.bound[0].byte_miss_ratio), 4)
    miss = {r.policy: r.byte_miss_ratio for r in report.results}
    facts["bytes_read_from_storage"] = {p: int(round(m * total)) for p, m in miss.items()}
    facts["planned_bytes_saved_vs_lru"] = int(round((miss["lru"] - miss["planned"]) * total))
    facts["planned_over_lru"] = round(miss["planned"] / miss["lru"], 3)
    return facts


def real_run(inputs: DemoInputs, tables=("orders", "customer"), epochs: int = REAL_EPOCHS) -> dict:
    """Two shuffled loaders through one file cache of half their bytes; bytes fetched per epoch, planned vs LRU."""
    import fsspec

    from pipeline_opt.loader import DeltaDataset, DeltaLoader, FileCache

    paths = [str(inputs.lakehouse / t) for t in tables if (inputs.lakehouse / t / "_delta_log").is_dir()]
    budget = sum(read_snapshot(p).table_bytes for p in paths) // 2
    out: dict = {"tables": [p.rsplit("/", 1)[-1] for p in paths], "budget_bytes": budget}
    for policy in ("lru", "planned"):
        folder = inputs.out / f"file-cache-{policy}"
        shutil.rmtree(folder, ignore_errors=True)
        cache = FileCache(folder, budget, policy=policy)
        loaders = [DeltaLoader(DeltaDataset(p, batch_size=4096, shuffle=True, seed=i, file_cache=cache,
                                            filesystem=fsspec.filesystem("file")))
                   for i, p in enumerate(paths)]
        per_epoch = []
        for _ in range(epochs):
            fetched = 0
            for loader in loaders:
                for _batch in loader:
                    pass
                fetched += loader.io_stats()["bytes_fetched"]
            per_epoch.append(fetched)
        out[f"{policy}_bytes_fetched_per_epoch"] = per_epoch
    lru, planned = out["lru_bytes_fetched_per_epoch"], out["planned_bytes_fetched_per_epoch"]
    out["planned_over_lru_after_the_first_epoch"] = round(sum(planned[1:]) / max(sum(lru[1:]), 1), 3)
    return out


def run(inputs: DemoInputs) -> dict:
    return {**simulated(inputs), "real_run": real_run(inputs)}
