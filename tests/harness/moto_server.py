"""A local S3-compatible server (moto's standalone server) on loopback, for tests, benchmarks and trying S3 paths.

Invariants: binds 127.0.0.1 on a free port; enforces request signatures (after a 3-request unsigned bootstrap that
creates one IAM user with full rights), so wrong credentials fail as they do on AWS; the process it starts is
stopped on exit. Needs the ``dev`` extra (``moto[server]``, ``boto3``).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from pipeline_opt.errors import require
from pipeline_opt.storage.settings import ObjectStore, StorageError
from tests.harness.driver_process import free_port


class MotoServer:
    """``with MotoServer(log_dir) as store:`` — an ``ObjectStore`` with valid keys and the given buckets."""

    def __init__(self, log_dir: Optional[Path] = None, buckets: tuple[str, ...] = ("lake",)):
        self.log_dir, self.buckets = log_dir, buckets
        self.proc: Optional[subprocess.Popen] = None
        self.store: Optional[ObjectStore] = None

    def start(self, timeout_s: float = 60) -> ObjectStore:
        require("moto.server", "dev")
        port = free_port()
        log = open(Path(self.log_dir) / "moto.log", "wb") if self.log_dir else subprocess.DEVNULL
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                     env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait(port, timeout_s)
        endpoint = f"http://127.0.0.1:{port}"
        key_id, secret = self._bootstrap(endpoint)
        self.store = ObjectStore(endpoint=endpoint, access_key_id=key_id, secret_access_key=secret)
        client = self.store.boto3_client()
        for bucket in self.buckets:
            client.create_bucket(Bucket=bucket)
        return self.store

    def _wait(self, port: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise StorageError(f"moto server did not listen on 127.0.0.1:{port} within {timeout_s:.0f}s")

    @staticmethod
    def _bootstrap(endpoint: str) -> tuple[str, str]:
        import boto3

        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="lake")
        key = iam.create_access_key(UserName="lake")["AccessKey"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="lake", PolicyName="all", PolicyDocument=json.dumps(policy))
        return key["AccessKeyId"], key["SecretAccessKey"]

    def keys(self, bucket: str = "lake") -> list[str]:
        """Every object key in ``bucket`` (to prove that nothing was written)."""
        pages = self.store.boto3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ObjectStore:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
