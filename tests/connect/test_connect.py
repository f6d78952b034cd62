"""Spark Connect: ``get_spark`` picks it from ``SPARK_REMOTE`` or the ``spark.remote`` key, an unreachable endpoint is
one line naming the URL, and the tables slice passes through a local Connect server (in a process of its own)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_opt.app.cli import main
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.spark import connect_endpoint, get_spark, remote_url

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket closes


def test_remote_url_from_the_config_key_or_spark_remote(monkeypatch):
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    assert remote_url() is None and remote_url({"spark.remote": "sc://h:1"}) == "sc://h:1"
    monkeypatch.setenv("SPARK_REMOTE", "sc://other:15002/;token=x")
    assert remote_url() == "sc://other:15002/;token=x" and remote_url({"spark.remote": "sc://h:1"}) == "sc://h:1"
    assert connect_endpoint("sc://other:15002/;token=x") == ("other", 15002)
    assert connect_endpoint("sc://host") == ("host", 15002) and connect_endpoint("sc://[::1]:9") == ("::1", 9)
    with pytest.raises(PipelineOptError, match="is not sc://HOST"):
        connect_endpoint("http://host:1")


def test_unreachable_endpoint_is_one_line_naming_the_url(monkeypatch, capsys):
    url = f"sc://127.0.0.1:{_closed_port()}"
    with pytest.raises(PipelineOptError, match=f"Spark Connect endpoint {url} is unreachable"):
        get_spark(conf={"spark.remote": url})
    monkeypatch.setenv("SPARK_REMOTE", url)
    assert main(["vacuum", "po_names.t"]) == 2  # a name needs Spark: the session is asked for, and refused
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and url in err[0] and "unreachable" in err[0]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the slice's own process, under its 1500 s limit, plus this one's start
def test_tables_slice_passes_through_a_local_connect_server():
    env = {**os.environ, "PIPELINE_OPT_CONNECT_SLICE": "1"}
    env.pop("SPARK_REMOTE", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not cluster",
                           "tests/connect/slice"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    tail = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 0, tail
    assert " passed" in tail and " failed" not in tail
