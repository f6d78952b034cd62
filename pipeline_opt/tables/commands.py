"""``pipeline-opt`` subcommands of the tables part."""
from __future__ import annotations

import argparse

from pipeline_opt.cli import add_json_flag
from pipeline_opt.config import parse_size
from pipeline_opt.errors import PipelineOptError


def size_arg(text: str) -> int:
    """argparse type for sizes such as ``16MB`` or ``1GiB``."""
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub) -> None:
    p = sub.add_parser("health", help="file-size health of a Delta table, from its log only")
    p.add_argument("path", help="Delta table path or URI")
    p.add_argument("--min-file-size", type=size_arg, default="16MB", help="window floor (default 16MB)")
    p.add_argument("--max-file-size", type=size_arg, default="1GB", help="window ceiling (default 1GB)")
    p.add_argument("--version", type=int, default=None, help="table version (default latest)")
    add_json_flag(p)
    p.set_defaults(func=_health)


def _health(args):
    from pipeline_opt.tables.health import table_health

    if args.min_file_size > args.max_file_size:
        raise PipelineOptError(f"--min-file-size {args.min_file_size} is larger than --max-file-size {args.max_file_size}")
    return table_health(args.path, args.min_file_size, args.max_file_size, version=args.version)
