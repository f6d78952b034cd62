"""A driver that runs jobs as steps of one Spark application against any master and prints their facts as JSON.

``python -m pipeline_opt.app.driver --master spark://127.0.0.1:7077 --steps '[{"op": "health", "path": …}]'``

Invariants: a step is a job of ``job.JOBS`` (``op`` names it, the other keys are its parameters, spelt as in Python:
``min_file_size``, ``execute``), run by ``run_job`` exactly as the command line would run it — only the master URL
differs; every step is checked before Spark starts; a step that writes a Delta table on S3 holds its writer lease,
as the job does however it is started; S3 settings come from the environment (``ObjectStore.from_env``) and are
checked with ``preflight`` before Spark starts, so a bad endpoint, credentials or bucket fail in a second with one
clear line. The last stdout line is one JSON object; a user error prints one line on stderr and exits 2.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Optional

from pipeline_opt.app.boundary import OneLineParser, debugging, guarded
from pipeline_opt.app.job import parse_params
from pipeline_opt.app.jobs import find_job, run_job
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.output import to_jsonable
from pipeline_opt.storage import ObjectStore, preflight, scheme_of


def _target(spec: dict) -> str:
    return str(spec.get("dest") or spec.get("path") or "")


def check_steps(steps: list[dict]) -> None:
    """Every step names a job and gives it parameters it accepts (nothing has started yet)."""
    for spec in steps:
        parse_params(find_job(spec["op"]), {k: v for k, v in spec.items() if k != "op"})


def run_steps(steps: list[dict], master: Optional[str], store: Optional[ObjectStore],
              conf: Optional[dict] = None) -> dict:
    """Run ``steps`` in one Spark application; returns {"steps": [facts…], "seconds": [...]} in order."""
    from pipeline_opt.spark import get_spark

    check_steps(steps)
    remote = sorted({_target(s) for s in steps if scheme_of(_target(s)) in ("s3", "s3a")})
    confs = dict(conf or {})
    if remote:
        from pipeline_opt.storage.jars import s3a_jar_confs

        store = store or ObjectStore.from_env()
        for uri in remote:
            preflight(uri, store)
        confs = {**s3a_jar_confs(), **store.spark_confs(), **confs}
    spark = get_spark("pipeline_opt-cluster-driver", master=master, conf=confs)
    results, seconds = [], []
    for spec in steps:
        start = time.perf_counter()
        result = run_job(spec["op"], {k: v for k, v in spec.items() if k != "op"}, spark=spark)
        results.append(to_jsonable(result))
        seconds.append(round(time.perf_counter() - start, 3))
    return {"steps": results, "seconds": seconds}


def _parse_steps(text: str) -> list[dict]:
    try:
        steps = json.loads(text)
    except ValueError as e:
        raise PipelineOptError(f"--steps is not JSON: {e}") from None
    if not isinstance(steps, list) or not all(isinstance(s, dict) and "op" in s for s in steps):
        raise PipelineOptError(f"--steps must be a JSON list of objects with an 'op' key, got {text[:80]!r}")
    return steps


def _parse_confs(items: list[str]) -> dict[str, str]:
    bad = [item for item in items if "=" not in item]
    if bad:
        raise PipelineOptError(f"--conf {bad[0]!r} is not KEY=VALUE")
    return dict(item.split("=", 1) for item in items)


def main(argv=None) -> int:
    parser = OneLineParser(prog="python -m pipeline_opt.app.driver", description=__doc__.splitlines()[0])
    parser.add_argument("--master", default=None, help="master URL (default: PIPELINE_OPT_SPARK_MASTER or local[2])")
    parser.add_argument("--steps", required=True,
                        help="JSON list of steps, e.g. '[{\"op\": \"health\", \"path\": \"t\"}]'")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark conf")
    words = list(sys.argv[1:] if argv is None else argv)
    debug = debugging(words)
    args = parser.parse_args(words)

    def call() -> int:
        result = run_steps(_parse_steps(args.steps), args.master, None, _parse_confs(args.conf))
        print(json.dumps(result, default=str))
        return 0

    return guarded("driver", call, debug)


if __name__ == "__main__":
    sys.exit(main())
