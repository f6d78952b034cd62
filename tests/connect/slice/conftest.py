"""A local Spark Connect server with Delta's SQL extensions, started by the tests (pyspark ships its server jar), and
``spark``: a Connect session to it in place of the suite's classic one."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline_opt.spark import DELTA_CONFS, delta_artifacts, ivy_home


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, proc: subprocess.Popen, log: Path, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Connect server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"the Connect server did not listen on {port} within {timeout_s:.0f} s")


@pytest.fixture(scope="session")
def connect_url(tmp_path_factory):
    import pyspark

    home = Path(pyspark.__file__).parent
    work = tmp_path_factory.mktemp("connect-server")
    port = _free_port()
    confs = {**DELTA_CONFS, "spark.connect.grpc.binding.port": str(port), "spark.ui.enabled": "false",
             "spark.sql.warehouse.dir": str(work / "warehouse"), "spark.sql.shuffle.partitions": "4",
             "spark.sql.session.timeZone": "UTC", "spark.jars.ivy": str(ivy_home()),
             "spark.driver.extraJavaOptions": "-Dlog4j2.configurationFile=file:"
                                              f"{Path(__import__('pipeline_opt').__file__).with_name('log4j2.properties')}"}
    cmd = [str(home / "bin" / "spark-submit"), "--master", "local[2]", "--driver-memory", "2g",
           "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
           "--packages", ",".join(delta_artifacts())]
    for key, value in confs.items():
        cmd += ["--conf", f"{key}={value}"]
    log = work / "server.log"
    env = {**os.environ, "SPARK_HOME": str(home), "PYSPARK_PYTHON": sys.executable}
    with open(log, "w") as out:
        proc = subprocess.Popen([*cmd, "spark-internal"], stdout=out, stderr=subprocess.STDOUT, cwd=work, env=env,
                                start_new_session=True)
    try:
        _wait_for(port, proc, log)
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def spark(connect_url):
    """The suite's ``spark`` fixture, as a Spark Connect session built by ``get_spark`` from its config key."""
    from pipeline_opt.spark import get_spark, is_connect

    session = get_spark("pipeline_opt-connect-tests", conf={"spark.remote": connect_url})
    assert is_connect(session)
    yield session
    session.stop()
