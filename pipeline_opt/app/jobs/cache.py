"""Cache jobs: ``cache simulate`` (trace replay) and ``cache plan`` (what stays cached under a byte budget).

Invariants: ``cache plan`` is a dry run unless ``--apply``; its budget and policy come from the flags, else from
``--config`` (``conf/cache.yml``), else from the cache part's defaults; a Spark session starts only for ``--apply``.
"""
from __future__ import annotations

from pathlib import Path

from pipeline_opt.app.job import Context, Param, columns, job, size
from pipeline_opt.cache.access_log import read_access_logs
from pipeline_opt.cache.controller import apply_plan, cached_tables, plan, summarize
from pipeline_opt.cache.settings import CacheConfig
from pipeline_opt.config import load
from pipeline_opt.errors import PipelineOptError

DEFAULT_POLICIES = "lru,arc,s3fifo,sieve,gdsf,lecar,learned"


def _fractions(text) -> list[float]:
    return [float(x) for x in columns(text)]


@job("cache simulate", "replay a trace through cache policies; miss ratios and an offline bound",
     Param("trace", "trace file", required=True),
     Param("format", "oracleGeneral binary or CSV time,key,size", default="oracle", choices=("oracle", "csv")),
     Param("policies", "comma-separated policy names", columns, default=DEFAULT_POLICIES.split(",")),
     Param("sizes", "cache sizes as fractions of the working set", _fractions, default=[0.01, 0.05, 0.1]),
     Param("limit", "replay only the first N requests", int),
     Param("no_bound", "skip the offline lower bound", flag=True))
def simulate(ctx: Context, args):
    from pipeline_opt.cache.simulate import simulate as replay
    from pipeline_opt.cache.trace import read_trace

    if not args.policies:
        raise PipelineOptError("--policies is empty")
    trace = read_trace(args.trace, args.format)
    if args.limit:
        trace = trace.head(args.limit)
    return replay(trace, args.policies, args.sizes, bound=not args.no_bound)


@job("cache plan", "cache actions for an access log under a byte budget (dry run by default)",
     Param("log", "Spark event log file or folder, or a CSV export of system.access.table_lineage (repeatable)",
           repeat=True, required=True),
     Param("budget", "cache budget, e.g. 2GiB (default: the config's budget)", size),
     Param("policy", "policy that ranks what stays (default: the config's policy)"),
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
                  spark_table_cache=cfg.spark_table_cache, disk_cache=cfg.disk_cache)
    return apply_plan(result, spark, state) if args.apply else result
