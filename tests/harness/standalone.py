"""A Spark standalone cluster (one master, N workers) started from the installed pyspark distribution.

Invariants: binds to loopback only; every process it starts is a child it tracks by pid and stops on ``stop()`` or
context exit (workers first, then the master; executors die with their worker); ``start()`` returns only once the
master reports every worker ALIVE, or raises ``ClusterError`` with the tail of the logs. Meant for tests, benchmarks
and trying jobs against a real master URL on one machine; a production cluster is pointed at with its URL only.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from pipeline_opt.errors import PipelineOptError
from tests.harness.driver_process import free_port


class ClusterError(PipelineOptError):
    """The standalone cluster did not come up (or a job on it failed)."""


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@dataclass
class StandaloneCluster:
    """``workers`` workers of ``cores`` cores and ``memory`` each, logs and work dirs under ``work_dir``."""

    work_dir: Path
    workers: int = 2
    cores: int = 1
    memory: str = "1g"
    host: str = "127.0.0.1"
    daemon_memory: str = "256m"
    master_url: Optional[str] = None
    webui_port: int = 0
    _procs: list = field(default_factory=list, repr=False)

    def _env(self) -> dict:
        env = dict(os.environ, SPARK_HOME=str(spark_home()), SPARK_LOCAL_IP=self.host,
                   SPARK_DAEMON_MEMORY=self.daemon_memory, SPARK_NO_DAEMONIZE="1")
        env.pop("PYSPARK_GATEWAY_PORT", None)
        env.pop("PYSPARK_GATEWAY_SECRET", None)
        return env

    def _launch(self, name: str, args: list[str]) -> None:
        log = open(Path(self.work_dir) / f"{name}.log", "wb")
        cmd = [str(spark_home() / "bin" / "spark-class"), *args]
        self._procs.append(subprocess.Popen(cmd, env=self._env(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL))

    def start(self, timeout_s: float = 120) -> str:
        """Start master and workers; return the master URL ``spark://host:port``."""
        Path(self.work_dir).mkdir(parents=True, exist_ok=True)
        props = Path(self.work_dir) / "daemon.conf"
        props.write_text("spark.master.rest.enabled false\nspark.ui.showConsoleProgress false\n")
        port, self.webui_port = free_port(self.host), free_port(self.host)
        self.master_url = f"spark://{self.host}:{port}"
        self._launch("master", ["org.apache.spark.deploy.master.Master", "--host", self.host, "--port", str(port),
                                "--webui-port", str(self.webui_port), "--properties-file", str(props)])
        self._wait(lambda s: s is not None, timeout_s, "master")
        for i in range(self.workers):
            work = Path(self.work_dir) / f"worker-{i}"
            work.mkdir(exist_ok=True)
            self._launch(f"worker-{i}", ["org.apache.spark.deploy.worker.Worker", "--host", self.host,
                                         "--cores", str(self.cores), "--memory", self.memory,
                                         "--webui-port", str(free_port(self.host)), "--work-dir", str(work),
                                         "--properties-file", str(props), self.master_url])
        self._wait(lambda s: s is not None and self.alive_workers(s) == self.workers, timeout_s, "workers")
        return self.master_url

    def state(self) -> Optional[dict]:
        """The master's JSON status, or None while it does not answer."""
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.webui_port}/json/", timeout=2) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    @staticmethod
    def alive_workers(state: dict) -> int:
        return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")

    def _wait(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self._procs):
                break
            if ready(self.state()):
                return
            time.sleep(0.5)
        logs = "".join(p.read_text(errors="replace")[-800:] for p in sorted(Path(self.work_dir).glob("*.log")))
        self.stop()
        raise ClusterError(f"standalone cluster {what} not ready after {timeout_s:.0f}s: {logs[-2000:]}")

    def stop(self) -> None:
        """Stop workers, then the master (SIGTERM, then SIGKILL after 15 s)."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()

    def __enter__(self) -> "StandaloneCluster":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
