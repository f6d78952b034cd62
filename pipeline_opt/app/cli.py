"""The ``pipeline-opt`` command: one subcommand per job in ``job.JOBS``.

Invariants: the parser is built from the jobs' own parameter lists, so the command line cannot drift from what
spark-submit, notebooks and the cluster driver accept; arguments reach the job as text and are converted by
``job.parse_params``, the one converter; an expected failure prints one line and exits with its code
(``boundary``'s table), never a stack trace; ``--debug`` shows it.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from pipeline_opt.app.boundary import OneLineParser, debugging, guarded
from pipeline_opt.app.job import Job, Param
from pipeline_opt.app.jobs import all_jobs, run_job
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.output import emit

DESCRIPTION = ("Fast, lean and safe Spark/Delta pipelines that feed PyTorch training: table health, compaction, "
               "VACUUM, the Delta → PyTorch loader, training-memory plans, cache plans and the report.")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="pipeline-opt", description=DESCRIPTION)
    # read (and removed) by boundary.debugging before parsing, so it may stand anywhere; listed here for --help
    parser.add_argument("--debug", action="store_true", help="show the traceback of any failure")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for spec in all_jobs().values():
        head, _, tail = spec.name.partition(" ")
        if tail:
            if head not in groups:
                group = sub.add_parser(head, help=f"{head} commands")
                groups[head] = group.add_subparsers(dest=f"{head}_command", metavar=f"{head.upper()}_COMMAND",
                                                    required=True)
            add_job_parser(groups[head], spec, tail)
        else:
            add_job_parser(sub, spec, spec.name)
    return parser


def add_job_parser(sub, spec: Job, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=spec.help, description=spec.help)
    add_params(p, spec)
    p.set_defaults(job=spec.name)
    return p


def add_params(p: argparse.ArgumentParser, spec: Job, json_switch: bool = True) -> None:
    """Every parameter of ``spec`` as text; defaults stay None so ``parse_params`` applies the job's own."""
    for param in spec.params:
        p.add_argument(*_names(param), **_options(param))
    if spec.json and json_switch:
        p.add_argument("--json", action="store_true", help="print the result as JSON")


def _names(param: Param) -> list[str]:
    return [param.name] if param.positional else [param.option]


def _options(param: Param) -> dict:
    options: dict = {"help": param.help + _default(param)}
    if param.positional:
        options["nargs"] = None if param.required else "?"
        return options
    options["dest"] = param.name
    options["required"] = param.required
    if param.flag:
        options["action"] = "store_true"
        options["default"] = None
    elif param.repeat:
        options["action"] = "append"
    if param.choices:
        options["choices"] = [str(c) for c in param.choices]
    return options


def _default(param: Param) -> str:
    value = param.default
    if value is None or value is False or value == []:
        return ""
    return f" (default {','.join(map(str, value)) if isinstance(value, list) else value})"


def given(args: argparse.Namespace, spec: Job) -> dict:
    """The parameters the command line gave (absent ones stay out, so the job's defaults apply)."""
    return {p.name: getattr(args, p.name) for p in spec.params if getattr(args, p.name, None) is not None}


def refuse_empty(args: argparse.Namespace, spec: Job) -> None:
    """A flag typed with an empty value is refused: at a prompt that is a slip (an unset shell variable), and leaving
    the flag out gives the default. Jobs and notebooks keep "" as "not given": a bundle variable or an empty
    widget means the default there (``--base-dir ""`` for catalog names)."""
    for p in spec.params:
        values = getattr(args, p.name, None)
        for value in values if isinstance(values, list) else [values]:
            if not p.positional and not p.flag and isinstance(value, str) and not value.strip():
                raise PipelineOptError(f"{p.option}: empty value; give one, or leave {p.option} out for the default")


def main(argv: Optional[Sequence[str]] = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    debug = debugging(words)
    args = build_parser().parse_args(words)
    spec = all_jobs()[args.job]

    def call() -> int:
        refuse_empty(args, spec)
        result = run_job(spec.name, given(args, spec))
        emit(result, getattr(args, "json", False))
        return int(getattr(result, "exit_code", 0) or 0)

    return guarded(f"pipeline-opt {spec.name}", call, debug)


if __name__ == "__main__":
    sys.exit(main())
