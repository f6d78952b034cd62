"""Cache jobs: ``cache simulate`` (trace replay), ``cache workload`` (generated product workloads) and ``cache plan``
(what stays cached under a byte budget).

Invariants: ``cache plan`` is a dry run unless ``--apply``; its budget and policy come from the flags, else from
``--config`` (``conf/cache.yml``), else from the cache part's defaults; a Spark session starts only for ``--apply``.
``cache workload`` writes only the ``--out`` file. Every flag is checked where it enters, before any file is read or
written: cache sizes are fractions in (0, 1], ``--limit`` is at least 1, budgets at least one byte and at most
``units.MAX_SIZE``, hours and scales finite and bounded, and a generated workload at most
``MAX_GENERATED_REQUESTS`` requests; a bad value is one ``PipelineOptError`` line naming the flag.
"""
from __future__ import annotations

from pathlib import Path

from pipeline_opt.app.job import Context, Param, columns, count, job, size
from pipeline_opt.cache.access_log import read_access_logs
from pipeline_opt.cache.controller import apply_plan, cached_tables, plan, summarize, with_hit_rates
from pipeline_opt.cache.generate import LoaderSpec, ScanSpec, TableSpec, WorkloadSpec
from pipeline_opt.cache.presets import PRESETS, preset
from pipeline_opt.cache.settings import CacheConfig
from pipeline_opt.config import load
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.units import MAX_COUNT, bounded_int, finite_float

DEFAULT_POLICIES = "lru,arc,s3fifo,sieve,gdsf,lecar,learned"
WORKLOAD_POLICIES = "lru,arc,s3fifo,sieve,learned,keep_resident,planned"


def _fractions(text) -> list[float]:
    """At least one cache size, each a fraction of the working set in (0, 1]."""
    sizes = [finite_float(x, "cache size", maximum=1.0, positive=True) for x in columns(text)]
    if not sizes:
        raise ValueError("no cache size given; use fractions of the working set in (0, 1], e.g. 0.01,0.1")
    return sizes


def _budget(text) -> int:
    """A byte budget of at least one byte (``0`` would plan to cache nothing and call that a plan)."""
    n = size(text)
    if n < 1:
        raise ValueError("a cache budget must be at least 1 byte, e.g. 2GiB")
    return n


def _upto(limit: int, what: str):
    def convert(text) -> int:
        return bounded_int(text, what, minimum=1, maximum=limit)
    convert.__name__ = what
    return convert


# A positive number of requests: 0 or less would replay nothing (or everything) and is refused.
_limit = _upto(MAX_COUNT, "request count")

# A generated workload is held in memory, one request per file read: refuse what would not fit in a laptop's.
MAX_GENERATED_REQUESTS = 10**8


def _scale(text) -> float:
    return finite_float(text, "scale", maximum=1000.0, positive=True)


def _sigma(text) -> float:
    return finite_float(text, "sigma", minimum=0.0, maximum=10.0)


def _hours(text) -> float:
    return finite_float(text, "hours", maximum=24.0 * 366 * 10, positive=True)  # ten years ahead is a typo


@job("cache simulate", "replay a trace through cache policies; miss ratios and an offline bound",
     Param("trace", "trace file", required=True),
     Param("format", "oracleGeneral binary, CSV time,key,size, or a product workload (.workload.jsonl, with plans)",
           default="oracle", choices=("oracle", "csv", "workload")),
     Param("policies", "comma-separated policy names (default: the block-trace set; for workloads "
           f"{WORKLOAD_POLICIES})", columns),
     Param("sizes", "cache sizes as fractions of the working set, each in (0, 1] (left out: the default)", _fractions,
           default=[0.01, 0.05, 0.1]),
     Param("limit", "replay only the first N requests (N >= 1)", _limit),
     Param("no_bound", "skip the offline lower bound", flag=True))
def simulate(ctx: Context, args):
    from pipeline_opt.cache.simulate import simulate as replay
    from pipeline_opt.cache.trace import read_trace
    from pipeline_opt.cache.workload import read_workload

    names = args.policies or (WORKLOAD_POLICIES if args.format == "workload" else DEFAULT_POLICIES).split(",")
    if not names:
        raise PipelineOptError("--policies is empty")
    trace = read_workload(args.trace) if args.format == "workload" else read_trace(args.trace, args.format)
    if args.limit is not None:
        if args.format == "workload":
            raise PipelineOptError("--limit does not apply to workloads (their plans would be cut mid-way)")
        trace = trace.head(args.limit)
    return replay(trace, names, args.sizes, bound=not args.no_bound)


@job("cache workload", "write a generated product workload (loaders, scheduled scans, ad-hoc reads) as a trace",
     Param("out", "the .workload.jsonl file to write", required=True),
     Param("preset", "a named workload (default: built from the options below)", choices=tuple(sorted(PRESETS))),
     Param("scale", "file counts of the preset times this, in (0, 1000]", _scale, default=1.0),
     Param("spec", "a YAML WorkloadSpec (tables, loaders, scans, ad-hoc reads) instead of a preset"),
     Param("tables", "tables, each read by its own loader", _upto(1000, "tables"), default=2),
     Param("files", "files per table", _upto(10**6, "files"), default=400),
     Param("median_size", "median file size", size, default=32 * 2**20),
     Param("sigma", "spread of the log-normal file sizes, in [0, 10]", _sigma, default=0.5),
     Param("epochs", "epochs each loader reads", _upto(1000, "epochs"), default=4),
     Param("jobs", "training jobs per table (each with its own seed)", _upto(1000, "jobs"), default=1),
     Param("scan_every", "requests between nightly scans of one more table (0: none)", count, default=0),
     Param("seed", "generator seed", count, default=0))
def workload(ctx: Context, args):
    from pipeline_opt.cache.generate import generate
    from pipeline_opt.cache.workload import write_workload

    spec = _workload_spec(args)
    w = generate(spec)
    path = write_workload(w, args.out)
    return {"out": str(path), "name": w.name, "requests": len(w), "files": len(w.file_tables),
            "tables": w.table_names, "announcements": len(w.announcements), "working_set_bytes": w.working_set_bytes}


def _workload_spec(args) -> WorkloadSpec:
    if args.preset and args.spec:
        raise PipelineOptError("give --preset or --spec, not both")
    if args.preset:
        return preset(args.preset, args.scale)
    if args.spec:
        return load(args.spec, WorkloadSpec)
    requests = args.tables * args.files * args.epochs * args.jobs
    if requests > MAX_GENERATED_REQUESTS:
        raise PipelineOptError(f"--tables x --files x --epochs x --jobs = {requests} requests; at most "
                               f"{MAX_GENERATED_REQUESTS} are generated (use a preset with --scale, or fewer)")
    tables = [TableSpec(f"t{i}", args.files, args.median_size, args.sigma) for i in range(args.tables)]
    loaders = [LoaderSpec(t.name, seed=100 * i + j, epochs=args.epochs)
               for i, t in enumerate(tables) for j in range(args.jobs)]
    scans = []
    if args.scan_every:
        tables.append(TableSpec("scanned", args.files, args.median_size, args.sigma))
        scans.append(ScanSpec("scanned", every=args.scan_every))
    spec = WorkloadSpec(f"{args.tables} tables x {args.jobs} jobs, {args.epochs} epochs", tables, loaders, scans,
                        seed=args.seed)
    spec.validate()
    return spec


@job("cache plan", "cache actions for an access log under a byte budget (dry run by default)",
     Param("log", "Spark event log file or folder, or a CSV export of system.access.table_lineage (repeatable)",
           repeat=True, required=True),
     Param("budget", "cache budget, e.g. 2GiB (default: the config's budget)", _budget),
     Param("policy", "planned (forecast reads within the horizon) or a policy to replay the log through "
           "(default: the config's policy)"),
     Param("horizon", "hours ahead the planned decision looks (default: the config's horizon_hours)",
           _hours),
     Param("config", "conf/cache.yml (optional)"),
     Param("apply", "run the Spark statements (default: dry run)", flag=True),
     Param("state", "JSON file holding what is cached now (makes --apply idempotent)"))
def cache_plan(ctx: Context, args):
    cfg = load(args.config, CacheConfig) if args.config else CacheConfig()
    accesses = read_access_logs(args.log)
    state = Path(args.state) if args.state else None
    spark = ctx.spark if args.apply else None
    cached = cached_tables(summarize(accesses), spark, state)
    result = plan(accesses, int(cfg.budget) if args.budget is None else args.budget, args.policy or cfg.policy, cached,
                  spark_table_cache=cfg.spark_table_cache, disk_cache=cfg.disk_cache,
                  horizon_hours=args.horizon or cfg.horizon_hours, schedule=cfg.schedule, pins=cfg.pins,
                  exclusions=cfg.exclusions)
    return with_hit_rates(apply_plan(result, spark, state) if args.apply else result, cached)


@job("cache announce", "tell a loader file cache what tonight's maintenance will read (or what a plan file names)",
     Param("cache_dir", "the loader's file-cache folder", required=True),
     Param("budget", "the file cache's budget (as the loaders give it)", size, required=True),
     Param("config", "conf/tables.yml: announce the scans of the tables the schedule compacts now"),
     Param("table", "with --config: only this table (repeatable)", repeat=True),
     Param("base_dir", "with --config: resolve relative table paths against this folder or URI"),
     Param("access_log", "reads per table for the schedule (JSON lines with a 'table' key, or one per line)"),
     Param("plan", "a JSON plan {\"source\", \"table\", \"files\": [...], \"start_after\"} instead of the schedule"),
     Param("start_after", "cache requests expected before the scans begin", count, default=0),
     Param("policy", "the file cache's policy (plans reach only plan-aware ones)", default="planned"))
def announce(ctx: Context, args):
    from pipeline_opt.loader import FileCache

    cache = FileCache(args.cache_dir, args.budget, policy=args.policy)
    if bool(args.plan) == bool(args.config):
        raise PipelineOptError("give --config (the maintenance schedule) or --plan FILE")
    if args.plan:
        return {"announced": [_announce_plan_file(cache, Path(args.plan), args.start_after)]}
    from pipeline_opt.app.selection import choose_tables
    from pipeline_opt.tables.options import compact_options
    from pipeline_opt.tables.schedule import rank_tables

    chosen = choose_tables(args)
    jobs = [(t.name, ref.location, compact_options(chosen.config, t)) for t, ref in chosen.items()]
    return {"announced": announce_maintenance(cache, rank_tables(args.config, jobs, args.access_log),
                                              args.start_after)}


def announce_maintenance(cache, schedule, start_after: int = 0) -> list[dict]:
    """Announces, per table the schedule compacts now, the scan of its live files (compaction reads the small files,
    verification the whole table), in storage order, as the source ``maintenance:<table>``."""
    from pipeline_opt.app.selection import storage_options
    from pipeline_opt.delta import read_snapshot

    out = []
    for t in schedule.tables:
        if not t.compact_now:
            continue
        snap = read_snapshot(t.path, storage_options=storage_options(t.path))
        cache.check_fits((snap.file_uri(f), f.size) for f in snap.files)  # one line if a file cannot fit at all
        uris = [snap.file_uri(f) for f in snap.files]
        kept = cache.announce(f"maintenance:{t.name}", uris, start_after)
        out.append({"source": f"maintenance:{t.name}", "table": t.path, "files": len(uris), "kept": kept})
    return out


def _announce_plan_file(cache, path: Path, start_after: int) -> dict:
    """A plan written by another scheduler: files (relative to the table or full URIs) of one table's snapshot;
    files the snapshot does not hold are ignored with one warning."""
    import json

    from pipeline_opt.app.selection import storage_options
    from pipeline_opt.delta import read_snapshot

    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        source, table, files = str(spec["source"]), str(spec["table"]), [str(f) for f in spec["files"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PipelineOptError(f"{path}: not a plan file {{source, table, files}}: {type(e).__name__}: {e}") from None
    snap = read_snapshot(table, storage_options=storage_options(table))
    cache.check_fits((snap.file_uri(f), f.size) for f in snap.files)  # one line if a file cannot fit at all
    uris = [f if "://" in f or f.startswith("/") else f"{snap.uri}/{f}" for f in files]
    try:
        start_after = bounded_int(spec.get("start_after", start_after), "start_after")
    except ValueError as e:
        raise PipelineOptError(f"{path}: {e}") from None
    kept = cache.announce(source, uris, start_after,
                          known={snap.file_uri(f) for f in snap.files})
    return {"source": source, "table": table, "files": len(files), "kept": kept}
