"""Pointing jobs at a Spark cluster: master URLs, the confs a cluster needs, and running a driver against it.

Invariant: a job changes nothing but its master URL to move between ``local[N]``, a standalone cluster
(``spark://``), YARN (``yarn``), Kubernetes (``k8s://``) and Databricks (the runtime's own session); the confs here
only say where executors find Python and the driver, never what the job computes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Mapping, Optional, Sequence

from pipeline_opt.cluster.standalone import ClusterError, StandaloneCluster, free_port

__all__ = ["StandaloneCluster", "ClusterError", "free_port", "master_kind", "cluster_confs", "run_json"]

MASTER_ENV = "PIPELINE_OPT_SPARK_MASTER"


def master_kind(master: Optional[str]) -> str:
    """``local``, ``standalone``, ``yarn``, ``kubernetes`` or ``databricks`` for a master URL (None: env/local)."""
    from pipeline_opt.spark import is_databricks

    if is_databricks():
        return "databricks"
    master = master or os.environ.get(MASTER_ENV, "local[2]")
    for prefix, kind in (("local", "local"), ("spark://", "standalone"), ("yarn", "yarn"), ("k8s://", "kubernetes")):
        if master.startswith(prefix):
            return kind
    raise ClusterError(f"master URL {master!r} is not local[N], spark://HOST:PORT, yarn or k8s://HOST:PORT")


def cluster_confs(executor_memory: str = "768m", executor_cores: int = 1, max_cores: Optional[int] = None,
                  driver_host: Optional[str] = None, python: Optional[str] = None) -> dict[str, str]:
    """Confs for running on a cluster: executor size, the Python executors start (same as the driver's by
    default), and the address executors use to reach the driver."""
    confs = {"spark.executor.memory": executor_memory, "spark.executor.cores": str(executor_cores),
             "spark.pyspark.python": python or sys.executable, "spark.pyspark.driver.python": sys.executable}
    if max_cores:
        confs["spark.cores.max"] = str(max_cores)
    if driver_host:
        confs["spark.driver.host"] = driver_host
        confs["spark.driver.bindAddress"] = driver_host
    return confs


def run_json(args: Sequence[str], env: Optional[Mapping[str, str]] = None, timeout_s: float = 600,
             cwd: Optional[str] = None) -> dict:
    """Run a driver process and return the JSON object on the last line of its stdout.

    A non-zero exit raises ``ClusterError`` with the tail of stderr (the driver's one-line error when it is a
    ``PipelineOptError``).
    """
    try:
        done = subprocess.run(list(args), env={**os.environ, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout_s, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise ClusterError(f"driver {' '.join(args[:3])} … did not finish in {timeout_s:.0f}s") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise ClusterError(f"driver exited {done.returncode}: {done.stderr.strip()[-1500:]}")
    return json.loads(lines[-1])
