"""The cluster driver (``python -m pipeline_opt.app.driver``) as a child process whose JSON result is read back.

Invariant: the child gets this interpreter, the given environment on top of ours, and its result is the JSON object
on the last line of its stdout; a failure raises ``DriverError`` with the tail of its stderr.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Mapping, Optional, Sequence

from pipeline_opt.errors import PipelineOptError


class DriverError(PipelineOptError):
    """The driver process failed or did not finish in time."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


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
        """The JSON object on the last line of stdout; ``DriverError`` with stderr's tail on failure."""
        if self._result is None:
            try:
                out, err = self.proc.communicate(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
                raise DriverError(f"driver {' '.join(self.args[:3])} … did not finish in {self.timeout_s:.0f}s") \
                    from None
            lines = [line for line in out.splitlines() if line.startswith("{")]
            if self.proc.returncode != 0 or not lines:
                raise DriverError(f"driver exited {self.proc.returncode}: {err.strip()[-1500:]}")
            self._result = json.loads(lines[-1])
        return self._result


def run_json(args: Sequence[str], env: Optional[Mapping[str, str]] = None, timeout_s: float = 600,
             cwd: Optional[str] = None) -> dict:
    """Run a driver process to the end and return the JSON object on the last line of its stdout."""
    return DriverRun(args, env, timeout_s, cwd).result()


def driver_args(master: str, steps: list[dict], conf: Optional[Mapping[str, str]] = None) -> list[str]:
    """Command line of the cluster driver running ``steps`` against ``master``."""
    args = [sys.executable, "-m", "pipeline_opt.app.driver", "--master", master, "--steps", json.dumps(steps)]
    return args + [f"--conf={k}={v}" for k, v in (conf or {}).items()]
