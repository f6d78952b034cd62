"""The loader job: ``stream`` one epoch of a Delta table through the loader and report what was delivered.

A catalog table name is resolved once through Spark to its location, which the loader reads (no JVM for a path).
"""
from __future__ import annotations

import time

from pipeline_opt.app.job import Context, Param, columns, count, job, positive_int
from pipeline_opt.app.selection import resolve, storage_options
from pipeline_opt.storage import for_engine


@job("stream", "stream one epoch of a Delta table into torch batches and report the facts",
     Param("path", "Delta table path or URI, or catalog name (db.table, catalog.schema.table)", positional=True,
           required=True),
     Param("columns", "comma-separated columns (default: every numeric column)", columns),
     Param("batch_size", "rows per batch", int, default=1024),
     Param("shuffle", "seeded two-level shuffle", flag=True),
     Param("seed", "shuffle seed", int, default=0),
     Param("version", "table version (default latest)", count),
     Param("workers", "worker processes", count, default=0),
     Param("prefetch", "batches read ahead (with workers: rounded up to whole windows)", positive_int, default=2),
     Param("rank", "this process's rank", int, default=0),
     Param("world_size", "ranks in all", int, default=1),
     Param("drop_last", "drop the uneven tail instead of padding", flag=True),
     Param("max_batches", "stop after this many batches (at least 1)", positive_int))
def stream(ctx: Context, args) -> dict:
    from pipeline_opt.loader import DeltaDataset, DeltaLoader

    path = for_engine(resolve(args.path, lambda: ctx.spark).location, "delta-rs")
    started = time.perf_counter()
    ds = DeltaDataset(path, columns=args.columns or None, batch_size=args.batch_size, shuffle=args.shuffle,
                      seed=args.seed, version=args.version, rank=args.rank, world_size=args.world_size,
                      drop_last=args.drop_last, storage_options=storage_options(path))
    loader = DeltaLoader(ds, num_workers=args.workers, prefetch_batches=args.prefetch)
    rows = batches = 0
    first = None
    for batch in loader:
        first = first or time.perf_counter() - started
        rows += len(next(iter(batch.values())))
        batches += 1
        if args.max_batches is not None and batches >= args.max_batches:
            break
    seconds = time.perf_counter() - started
    return {**ds.facts(), "columns": ds.columns, "rows_delivered": rows, "batches_delivered": batches,
            "seconds": round(seconds, 3), "first_batch_s": round(first or seconds, 3),
            "rows_per_s": round(rows / seconds) if seconds else 0, **loader.io_stats()}
