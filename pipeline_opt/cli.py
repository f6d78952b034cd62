"""The ``pipeline-opt`` command: one subcommand per job.

Each part of the package registers its own subcommands from a module listed in ``COMMAND_MODULES`` (a
``register(subparsers)`` function), so this file does not grow with the parts. A handler returns its result;
this module prints it (``--json`` for JSON) and turns user errors into one line and a non-zero exit.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from pipeline_opt.errors import PipelineOptError
from pipeline_opt.output import emit

# Order of the parts in ``--help``; a module that does not exist (a part not built yet) is skipped.
COMMAND_MODULES = ("demo.commands", "tables.commands", "tables.maintenance_commands", "loader.commands",
                   "training.commands", "cache.commands", "monitor.commands")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipeline-opt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"pipeline_opt.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"pipeline_opt.{name}":
                raise
            continue
        module.register(sub)
    return parser


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except PipelineOptError as e:
        print(f"pipeline-opt {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"pipeline-opt {args.command}: interrupted", file=sys.stderr)
        return 130
    emit(result, getattr(args, "json", False))
    return int(getattr(result, "exit_code", 0) or 0) if not isinstance(result, dict) else 0


if __name__ == "__main__":
    sys.exit(main())
