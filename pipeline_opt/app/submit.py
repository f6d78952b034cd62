"""The spark-submit entry of every job: ``jobs/<name>.py`` calls ``submit(job, argv)``.

Invariants: the arguments are the command line's (``pipeline-opt JOB --help`` lists them) and reach the job through
the same ``run_job``; the session is the one spark-submit started (its ``--master``, ``--packages`` and ``--conf``
win); the result prints as JSON lines, one per table for a job over several tables; a user error prints one line on
stderr and returns its exit code.
"""
from __future__ import annotations

import sys
from typing import Optional, Sequence

from pipeline_opt.app.boundary import OneLineParser, debugging, guarded
from pipeline_opt.app.cli import add_params, given
from pipeline_opt.app.jobs import find_job, run_job
from pipeline_opt.output import json_lines


def submit(name: str, argv: Optional[Sequence[str]] = None) -> int:
    spec = find_job(name)
    parser = OneLineParser(prog=name, description=spec.help)
    add_params(parser, spec, json_switch=False)  # it always prints JSON lines
    words = list(sys.argv[1:] if argv is None else argv)
    debug = debugging(words)
    args = parser.parse_args(words)

    def call() -> int:
        result = run_job(name, given(args, spec))
        for line in json_lines(result):
            print(line, flush=True)
        return int(getattr(result, "exit_code", 0) or 0)

    return guarded(name, call, debug)
