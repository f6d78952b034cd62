"""``pipeline-opt cache …`` subcommands: ``simulate`` (trace replay) and ``plan`` (cache actions under a budget)."""
from __future__ import annotations

import argparse

from pipeline_opt.cli import add_json_flag
from pipeline_opt.config import parse_size
from pipeline_opt.errors import PipelineOptError

DEFAULT_POLICIES = "lru,arc,s3fifo,sieve,gdsf,lecar,learned"


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _fractions(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of fractions") from None


def register(sub) -> None:
    cache = sub.add_parser("cache", help="cache policies: simulate traces, plan what stays cached")
    csub = cache.add_subparsers(dest="cache_command", metavar="CACHE_COMMAND", required=True)

    p = csub.add_parser("simulate", help="replay a trace through cache policies; miss ratios and an offline bound")
    p.add_argument("--trace", required=True, help="trace file")
    p.add_argument("--format", default="oracle", choices=("oracle", "csv"), help="oracleGeneral binary or CSV time,key,size")
    p.add_argument("--policies", default=DEFAULT_POLICIES, help=f"comma-separated (default {DEFAULT_POLICIES})")
    p.add_argument("--sizes", type=_fractions, default=[0.01, 0.05, 0.1], help="cache sizes as fractions of the working set")
    p.add_argument("--limit", type=int, default=None, help="replay only the first N requests")
    p.add_argument("--no-bound", action="store_true", help="skip the offline lower bound")
    add_json_flag(p)
    p.set_defaults(func=_simulate)

    p = csub.add_parser("plan", help="cache actions for an access log under a byte budget (dry run by default)")
    p.add_argument("--log", required=True, action="append",
                   help="Spark event log file or directory, or a CSV export of system.access.table_lineage (repeatable)")
    p.add_argument("--budget", required=True, type=_size, help="cache budget, e.g. 2GiB")
    p.add_argument("--policy", default=None, help="policy that ranks what stays (default: conf/cache.yml's policy)")
    p.add_argument("--config", default=None, help="conf/cache.yml (optional)")
    p.add_argument("--apply", action="store_true", help="run the Spark statements (default: dry run)")
    p.add_argument("--state", default=None, help="JSON file holding what is cached now (makes --apply idempotent)")
    add_json_flag(p)
    p.set_defaults(func=_plan)


def _simulate(args):
    from pipeline_opt.cache.simulate import simulate
    from pipeline_opt.cache.trace import read_trace

    names = [n.strip() for n in args.policies.split(",") if n.strip()]
    if not names:
        raise PipelineOptError("--policies is empty")
    trace = read_trace(args.trace, args.format)
    if args.limit:
        trace = trace.head(args.limit)
    return simulate(trace, names, args.sizes, bound=not args.no_bound)


def _plan(args):
    from pipeline_opt.cache.controller import plan_from_logs

    return plan_from_logs(args.log, args.budget, policy=args.policy, config_path=args.config,
                          apply=args.apply, state_path=args.state)
