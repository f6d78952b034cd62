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

__all__ = ["StandaloneCluster", "ClusterError", "free_port", "master_kind", "cluster_confs", "run_json",
           "DriverRun", "driver_args", "store_env"]

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


class DriverRun:
    """A driver process started now whose JSON result is collected later (``result()``), so the caller can work
    meanwhile (e.g. compute the local-mode reference while the cluster run is in flight)."""

    def __init__(self, args: Sequence[str], env: Optional[Mapping[str, str]] = None, timeout_s: float = 600,
                 cwd: Optional[str] = None):
        self.args, self.timeout_s = list(args), timeout_s
        self.proc = subprocess.Popen(self.args, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=cwd)
        self._result: Optional[dict] = None

    def result(self) -> dict:
        """The JSON object on the last line of stdout; ``ClusterError`` with stderr's tail on failure."""
        if self._result is None:
            try:
                out, err = self.proc.communicate(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
                raise ClusterError(f"driver {' '.join(self.args[:3])} … did not finish in {self.timeout_s:.0f}s") \
                    from None
            lines = [line for line in out.splitlines() if line.startswith("{")]
            if self.proc.returncode != 0 or not lines:
                raise ClusterError(f"driver exited {self.proc.returncode}: {err.strip()[-1500:]}")
            self._result = json.loads(lines[-1])
        return self._result


def run_json(args: Sequence[str], env: Optional[Mapping[str, str]] = None, timeout_s: float = 600,
             cwd: Optional[str] = None) -> dict:
    """Run a driver process to the end and return the JSON object on the last line of its stdout."""
    return DriverRun(args, env, timeout_s, cwd).result()


def driver_args(master: str, steps: list[dict], conf: Optional[Mapping[str, str]] = None) -> list[str]:
    """Command line of ``pipeline_opt.cluster.driver`` running ``steps`` against ``master``."""
    args = [sys.executable, "-m", "pipeline_opt.cluster.driver", "--master", master, "--steps", json.dumps(steps)]
    return args + [f"--conf={k}={v}" for k, v in (conf or {}).items()]


def store_env(store) -> dict[str, str]:
    """Environment that hands an ``ObjectStore``'s endpoint and credentials to a driver process."""
    env = {"AWS_REGION": store.region}
    for name, value in (("AWS_ENDPOINT_URL", store.endpoint), ("AWS_ACCESS_KEY_ID", store.access_key_id),
                        ("AWS_SECRET_ACCESS_KEY", store.secret_access_key),
                        ("AWS_SESSION_TOKEN", store.session_token)):
        if value:
            env[name] = value
    env["PIPELINE_OPT_S3_COMMIT_COORDINATION"] = store.commit_coordination
    return env
