"""A driver that runs table jobs in one Spark application against any master and prints their facts as JSON.

``python -m pipeline_opt.cluster.driver --master spark://127.0.0.1:7077 --steps '[{"op": "health", "path": …}]'``

Invariants: each step calls the same library function a local run calls, with the same arguments — only the master
URL differs; a step that writes a Delta table on S3 runs inside ``single_writer`` (the S3 writer lease) and Spark
refuses the write without it; S3 settings come from the environment (``ObjectStore.from_env``) and are checked with
``preflight`` before Spark starts, so a bad endpoint, credentials or bucket fail in a second with one clear line.
The last stdout line is one JSON object; a user error prints one line on stderr and exits 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, is_dataclass
from typing import Callable

from pipeline_opt.errors import PipelineOptError
from pipeline_opt.storage import ObjectStore, check_spark_write, for_engine, preflight, scheme_of, single_writer

STEPS: dict[str, Callable] = {}
WRITES = {"compact", "vacuum", "copy"}  # steps that commit to the table (vacuum only when not a dry run)


def step(name: str):
    def register(fn):
        STEPS[name] = fn
        return fn
    return register


def _facts(value):
    return asdict(value) if is_dataclass(value) else value


@step("executors")
def _executors(spark, _store, wait_for: int = 0, timeout_s: float = 120.0) -> dict:
    """Executors registered with the driver (the driver itself not counted); waits up to ``timeout_s`` for
    ``wait_for`` of them, since workers register after the session starts and a busy machine makes them late."""
    deadline = time.monotonic() + timeout_s
    while True:
        count = int(spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()) - 1
        if count >= wait_for or time.monotonic() > deadline:
            return {"executors": count, "master": spark.sparkContext.master}
        time.sleep(0.5)


@step("health")
def _health(spark, store, path: str, **kw) -> dict:
    from pipeline_opt.tables.health import table_health

    opts = store.storage_options() if store and scheme_of(path) in ("s3", "s3a") else None
    return _facts(table_health(for_engine(path, "delta-rs"), storage_options=opts, **kw))


@step("fingerprint")
def _fingerprint(spark, _store, path: str, version=None) -> dict:
    from pipeline_opt.tables.verify import fingerprint

    return _facts(fingerprint(spark, for_engine(path, "spark"), version))


@step("compact")
def _compact(spark, _store, path: str, min_file_size: int = 16 * 10**6, max_file_size: int = 10**9,
             **kw) -> dict:
    """Compaction with verification of every commit (``compact_table``); returns its summary."""
    from pipeline_opt.tables.compact import CompactOptions, compact_table
    from pipeline_opt.tables.plan import Window

    options = CompactOptions(window=Window(int(min_file_size), int(max_file_size)), **kw)
    return compact_table(spark, for_engine(path, "spark"), options).summary()


@step("vacuum")
def _vacuum(spark, _store, path: str, **kw) -> dict:
    from pipeline_opt.tables.vacuum import vacuum

    return _facts(vacuum(spark, for_engine(path, "spark"), **kw))


@step("copy")
def _copy(spark, _store, src: str, dest: str, partition_by=()) -> dict:
    """Write the latest snapshot of ``src`` as a new Delta table at ``dest`` (one commit)."""
    df = spark.read.format("delta").load(for_engine(src, "spark"))
    writer = df.write.format("delta").mode("errorifexists")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(for_engine(dest, "spark"))
    return {"rows": spark.read.format("delta").load(for_engine(dest, "spark")).count()}


@step("train")
def _train(spark, _store, config: str, table: str | None = None, steps: int | None = None,
           checkpoint_dir: str | None = None) -> dict:
    """``pipeline-opt train``'s job under ``TorchDistributor`` on this session's master: local mode on
    ``local[N]``, one barrier task per process on a cluster (gloo on CPU)."""
    from dataclasses import replace

    from pipeline_opt.config import TrainingConfig, load
    from pipeline_opt.training import job

    cfg = load(config, TrainingConfig)
    cfg = replace(cfg, **{k: v for k, v in (("steps", steps), ("checkpoint_dir", checkpoint_dir)) if v is not None})
    return job.train(cfg, table=table, spark=spark)


def _target(spec: dict) -> str:
    return spec.get("dest") or spec.get("path") or ""


def _writes(spec: dict) -> bool:
    return spec["op"] in WRITES and not (spec["op"] == "vacuum" and spec.get("dry_run", True))


def run_steps(steps: list[dict], master: str | None, store: ObjectStore | None, conf: dict | None = None) -> dict:
    """Run ``steps`` in one Spark application; returns {"steps": [facts…], "seconds": [...]} in order."""
    from pipeline_opt.spark import get_spark

    unknown = [s.get("op") for s in steps if s.get("op") not in STEPS]
    if unknown:
        raise PipelineOptError(f"unknown step {unknown[0]!r}; known: {', '.join(sorted(STEPS))}")
    remote = sorted({_target(s) for s in steps if scheme_of(_target(s)) in ("s3", "s3a")})
    confs = dict(conf or {})
    if remote:
        from pipeline_opt.storage.jars import s3a_jar_confs

        store = store or ObjectStore.from_env()
        for uri in remote:
            preflight(uri, store)
        confs = {**s3a_jar_confs(), **store.spark_confs(), **confs}
    # Python workers on executors (UDFs, TorchDistributor tasks) start PYSPARK_PYTHON; the builder conf alone is
    # not read for them, so the driver's interpreter (with numpy, torch, pipeline_opt) is the default.
    os.environ.setdefault("PYSPARK_PYTHON", confs.get("spark.pyspark.python", sys.executable))
    spark = get_spark("pipeline_opt-cluster-driver", master=master, conf=confs)
    results, seconds = [], []
    for spec in steps:
        args = {k: v for k, v in spec.items() if k != "op"}
        start = time.perf_counter()
        target = _target(spec)
        if _writes(spec):
            with single_writer(target, store):
                check_spark_write(spark, for_engine(target, "spark"))
                results.append(STEPS[spec["op"]](spark, store, **args))
        else:
            results.append(STEPS[spec["op"]](spark, store, **args))
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
    parser = argparse.ArgumentParser(prog="python -m pipeline_opt.cluster.driver", description=__doc__.splitlines()[0])
    parser.add_argument("--master", default=None, help="master URL (default: PIPELINE_OPT_SPARK_MASTER or local[2])")
    parser.add_argument("--steps", required=True, help="JSON list of steps, e.g. '[{\"op\": \"health\", \"path\": \"t\"}]'")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark conf")
    args = parser.parse_args(argv)
    try:
        conf = _parse_confs(args.conf)
        result = run_steps(_parse_steps(args.steps), args.master, None, conf)
    except PipelineOptError as e:
        print(f"driver: error: {e}", file=sys.stderr)
        return e.exit_code
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
