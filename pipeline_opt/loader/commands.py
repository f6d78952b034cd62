"""``pipeline-opt stream``: read one epoch of a Delta table through the loader and report what was delivered."""
from __future__ import annotations

from pipeline_opt.cli import add_json_flag


def register(sub) -> None:
    p = sub.add_parser("stream", help="stream one epoch of a Delta table into torch batches and report the facts")
    p.add_argument("path", help="Delta table path or URI")
    p.add_argument("--columns", default=None, help="comma-separated columns (default: every numeric column)")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--shuffle", action="store_true", help="seeded two-level shuffle")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--version", type=int, default=None, help="table version (default latest)")
    p.add_argument("--workers", type=int, default=0, help="worker processes")
    p.add_argument("--rank", type=int, default=0)
    p.add_argument("--world-size", type=int, default=1)
    p.add_argument("--drop-last", action="store_true", help="drop the uneven tail instead of padding")
    p.add_argument("--max-batches", type=int, default=None, help="stop after this many batches")
    add_json_flag(p)
    p.set_defaults(func=_stream)


def _stream(args) -> dict:
    import time

    from pipeline_opt.loader import DeltaDataset, DeltaLoader

    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    started = time.perf_counter()
    ds = DeltaDataset(args.path, columns=columns, batch_size=args.batch_size, shuffle=args.shuffle, seed=args.seed,
                      version=args.version, rank=args.rank, world_size=args.world_size, drop_last=args.drop_last)
    loader = DeltaLoader(ds, num_workers=args.workers)
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
