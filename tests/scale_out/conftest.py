"""Fixtures of the scale-out tests: a real Spark standalone cluster and a real S3-compatible server, both on
loopback, started once per session and stopped afterwards; plus small Delta tables built without Spark."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline_opt.cluster import StandaloneCluster, free_port
from pipeline_opt.storage import ObjectStore

BUCKET = "lake"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """One master and two 1-core, 1 GiB workers on 127.0.0.1."""
    with StandaloneCluster(tmp_path_factory.mktemp("cluster"), workers=2, cores=1, memory="1g") as c:
        yield c


def _wait_port(port: int, proc, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"moto server did not listen on {port}")


def _iam_user(endpoint: str) -> tuple[str, str]:
    """An IAM user with full rights; moto checks signatures against its keys from then on."""
    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam.create_user(UserName="lake")
    key = iam.create_access_key(UserName="lake")["AccessKey"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="lake", PolicyName="all", PolicyDocument=json.dumps(policy))
    return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """``ObjectStore`` of a moto S3 server that enforces credentials, with bucket ``lake``."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    # The first 3 requests (the IAM bootstrap) go unsigned; every later request must carry a valid signature.
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, proc)
        endpoint = f"http://127.0.0.1:{port}"
        key_id, secret = _iam_user(endpoint)
        store = ObjectStore(endpoint=endpoint, access_key_id=key_id, secret_access_key=secret)
        store.boto3_client().create_bucket(Bucket=BUCKET)
        yield store
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def bucket_keys(store: ObjectStore, bucket: str = BUCKET) -> list[str]:
    pages = store.boto3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def write_small_table(path: str, commits: int = 12, rows: int = 200, storage_options=None) -> None:
    """A partitioned Delta table of ``commits`` small appends (one file per partition per commit)."""
    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    rng = np.random.default_rng(7)
    for c in range(commits):
        ids = np.arange(c * rows, (c + 1) * rows, dtype=np.int64)
        table = pa.table({"id": ids, "part": (ids % 3).astype(np.int32),
                          "x": rng.normal(size=rows), "y": rng.integers(0, 100, rows, dtype=np.int64),
                          "label": pa.array([f"r{i}" for i in ids])})
        write_deltalake(path, table, mode="append", partition_by=["part"], storage_options=storage_options)


@pytest.fixture(scope="session")
def small_table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tables") / "events"
    write_small_table(str(path))
    return path


@pytest.fixture
def table_copy(small_table, tmp_path):
    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(small_table, dest)
        return dest
    return copy
