"""The single-writer rule for Delta tables on S3, enforced with a writer lease.

Why: S3 has no atomic rename, and open-source Delta on Spark commits to ``s3a://`` with ``S3SingleDriverLogStore``,
which keeps writers apart only inside one driver JVM. Two drivers (two jobs, two clusters, a job and a notebook)
that commit the same version at once both "succeed" and one commit is silently lost. Delta's own remedy,
``S3DynamoDBLogStore``, needs DynamoDB and is not understood by delta-rs 1.x (which coordinates with S3
conditional writes instead), so neither engine's mechanism covers a mixed fleet.

Rule: under ``commit_coordination: single-writer`` (the default) every pipeline_opt job that writes a Delta table on
S3 first takes the table's writer lease — an object ``<table>/_pipeline_opt/writer.lease`` created with a
conditional write (``If-None-Match: *``), which S3 (since 2024), MinIO, R2 and moto make atomic. A second writer is
refused with ``ConcurrentWriterError`` naming the holder; it never reaches the Delta log. The lease carries an expiry
that a heartbeat renews (``If-Match`` on its ETag), so a crashed holder blocks others for at most ``ttl_s``; an
expired lease is taken over atomically. Under ``commit_coordination: dynamodb`` all Spark writers go through
``S3DynamoDBLogStore`` (one DynamoDB table per fleet) and no lease is taken. Paths that are not S3 need nothing:
local files, ADLS and GCS give Delta an atomic put-if-absent. The folder starts with ``_``, so readers and VACUUM
ignore it.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Optional

from pipeline_opt.storage.preflight import explain
from pipeline_opt.storage.settings import S3_SCHEMES, ObjectStore, StorageError, bucket_and_key, scheme_of

LEASE_KEY = "_pipeline_opt/writer.lease"
DYNAMODB_LOGSTORE = "io.delta.storage.S3DynamoDBLogStore"
_HELD: dict[str, "WriterLease"] = {}  # table (bucket/key) -> lease held by this process


class ConcurrentWriterError(StorageError):
    """Another writer holds the table's lease; under the single-writer rule this write must not start."""


@dataclass
class LeaseHolder:
    owner: str
    host: str
    pid: int
    acquired_at: float
    expires_at: float

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.acquired_at))
        return f"{self.owner} (host {self.host}, pid {self.pid}) since {since}, lease expires in " \
               f"{max(self.expires_at - time.time(), 0):.0f}s"


def table_key(uri: str) -> str:
    bucket, key = bucket_and_key(uri)
    return f"{bucket}/{key}"


def needs_lease(uri: str, store: Optional[ObjectStore]) -> bool:
    """True where the single-writer rule applies: an S3 path under ``single-writer`` coordination."""
    return scheme_of(uri) in S3_SCHEMES and (store is None or store.commit_coordination == "single-writer")


class WriterLease:
    """Exclusive right to write the Delta table at ``uri`` (an S3 URI), for ``ttl_s`` seconds at a time."""

    def __init__(self, uri: str, store: ObjectStore, ttl_s: float = 600, owner: Optional[str] = None):
        self.uri, self.store, self.ttl_s = uri, store, float(ttl_s)
        self.bucket, prefix = bucket_and_key(uri)
        self.key = f"{prefix}/{LEASE_KEY}" if prefix else LEASE_KEY
        self.holder = LeaseHolder(owner or f"pipeline_opt-{uuid.uuid4().hex[:8]}", socket.gethostname(),
                                  os.getpid(), 0.0, 0.0)
        self.etag: Optional[str] = None
        self.lost = False
        self._stop = threading.Event()
        self._client = None

    def _body(self) -> bytes:
        self.holder.expires_at = time.time() + self.ttl_s
        return json.dumps(self.holder.__dict__).encode()

    def _call(self, method: str, **kwargs):
        self._client = self._client or self.store.boto3_client()
        try:
            return getattr(self._client, method)(Bucket=self.bucket, Key=self.key, **kwargs)
        except Exception as e:
            if _code(e) in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                raise
            raise explain(e, self.uri, self.store) or StorageError(f"{self.uri}: writer lease: {e}") from None

    def acquire(self) -> "WriterLease":
        self.holder.acquired_at = time.time()
        try:
            self.etag = self._call("put_object", Body=self._body(), IfNoneMatch="*")["ETag"]
        except Exception as e:
            if _code(e) not in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                raise
            self._take_over_expired()
        _HELD[table_key(self.uri)] = self
        threading.Thread(target=self._heartbeat, daemon=True, name="writer-lease").start()
        return self

    def _take_over_expired(self) -> None:
        current = self._call("get_object")
        holder = LeaseHolder(**json.loads(current["Body"].read()))
        if holder.expires_at > time.time():
            raise ConcurrentWriterError(
                f"{self.uri} is being written by {holder.describe()}; Delta on S3 allows one writer at a time "
                f"(commit_coordination: single-writer) — wait for it, or use commit_coordination: dynamodb")
        try:
            self.etag = self._call("put_object", Body=self._body(), IfMatch=current["ETag"])["ETag"]
        except Exception as e:
            if _code(e) in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                raise ConcurrentWriterError(f"{self.uri}: another writer took the expired lease first") from None
            raise

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                self.etag = self._call("put_object", Body=self._body(), IfMatch=self.etag)["ETag"]
            except Exception:  # lost the lease (taken over or store gone): writes must stop
                self.lost = True
                return

    def release(self) -> None:
        """Stop renewing and delete the lease if it is still ours."""
        self._stop.set()
        _HELD.pop(table_key(self.uri), None)
        if self.etag is None or self.lost:
            return
        try:
            if self._call("head_object")["ETag"] == self.etag:
                self._call("delete_object")
        except Exception:  # an expired lease left behind is harmless: the next writer takes it over
            pass

    def __enter__(self) -> "WriterLease":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def single_writer(uri: str, store: Optional[ObjectStore], ttl_s: float = 600, owner: Optional[str] = None):
    """Context manager holding the right to write ``uri``: a ``WriterLease`` on S3 (single-writer), else nothing."""
    from contextlib import nullcontext

    if not needs_lease(uri, store):
        return nullcontext(None)
    # no settings given: the store from the environment, as the cluster driver does (a None store has no client)
    return WriterLease(uri, store if store is not None else ObjectStore.from_env(), ttl_s, owner)


def check_spark_write(spark, uri: str) -> None:
    """Refuse a Spark Delta write to an S3 ``uri`` unless this process holds its lease or the session commits
    through ``S3DynamoDBLogStore``."""
    if scheme_of(uri) not in S3_SCHEMES:
        return
    scheme = scheme_of(uri)
    if spark.conf.get(f"spark.delta.logStore.{scheme}.impl", "") == DYNAMODB_LOGSTORE:
        return
    lease = _HELD.get(table_key(uri))
    if lease is None or lease.lost:
        raise ConcurrentWriterError(
            f"refusing to write {uri}: Delta on S3 allows one writer at a time and this process holds no writer "
            f"lease (wrap the write in pipeline_opt.storage.single_writer) and the session does not use "
            f"{DYNAMODB_LOGSTORE}")


def _code(error: BaseException) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
