"""Object-store settings: one endpoint/credentials config mapped to Spark ``s3a`` confs and to delta-rs/pyarrow
``storage_options``.

Invariants: every engine that touches a table (Spark through hadoop-aws, the loader through delta-rs and pyarrow,
the writer lease through boto3) is configured from the same ``ObjectStore``, so they can never disagree on endpoint,
region or credentials; a setting is validated when the object is built, and errors name the offending value.
Secrets come from the environment (``from_env``) or from the caller, never from a committed YAML file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Literal, Mapping, Optional
from urllib.parse import urlparse

from pipeline_opt.errors import PipelineOptError

Coordination = Literal["single-writer", "dynamodb"]
COORDINATIONS = ("single-writer", "dynamodb")
S3_SCHEMES = ("s3", "s3a")
_H = "spark.hadoop.fs.s3a."


class StorageError(PipelineOptError):
    """An object-store setting is invalid or the store cannot be used as configured."""


@dataclass(frozen=True)
class ObjectStore:
    """Where an S3-compatible store is and how to sign requests to it.

    ``endpoint`` None means AWS itself (region endpoint); set it for MinIO, moto, Ceph, R2 …  ``path_style`` is
    needed by most S3-compatible servers (bucket in the path, not the host name). ``commit_coordination`` says how
    concurrent Delta writers are kept apart (see ``pipeline_opt.storage.writer``).
    """

    endpoint: Optional[str] = None
    region: str = "us-east-1"
    access_key_id: Optional[str] = None
    secret_access_key: Optional[str] = None
    session_token: Optional[str] = None
    path_style: bool = True
    commit_coordination: Coordination = "single-writer"
    dynamodb_table: str = "delta_log"
    connect_timeout_s: int = 5
    attempts: int = 2

    def __post_init__(self):
        if self.endpoint is not None:
            url = urlparse(self.endpoint)
            if url.scheme not in ("http", "https") or not url.hostname or url.path not in ("", "/"):
                raise StorageError(f"endpoint {self.endpoint!r} is not http(s)://host[:port]")
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise StorageError("give both access_key_id and secret_access_key, or neither "
                               f"(access_key_id={self.access_key_id!r})")
        if self.commit_coordination not in COORDINATIONS:
            raise StorageError(f"commit_coordination {self.commit_coordination!r} is not one of "
                               f"{', '.join(COORDINATIONS)}")
        if not self.region:
            raise StorageError("region must not be empty")
        if self.connect_timeout_s < 1 or self.attempts < 1:
            raise StorageError(f"connect_timeout_s and attempts must be ≥ 1 (got {self.connect_timeout_s}, "
                               f"{self.attempts})")

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, **overrides) -> "ObjectStore":
        """Settings from the standard AWS variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID`` …)."""
        env = os.environ if env is None else env
        found = dict(
            endpoint=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            access_key_id=env.get("AWS_ACCESS_KEY_ID"), secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            session_token=env.get("AWS_SESSION_TOKEN"),
            commit_coordination=env.get("PIPELINE_OPT_S3_COMMIT_COORDINATION", "single-writer"),
        )
        return cls(**{**found, **overrides})

    @classmethod
    def from_yaml(cls, path, env: Optional[Mapping[str, str]] = None) -> "ObjectStore":
        """Settings from a YAML file (see ``conf/storage.yml``); keys it leaves out come from the environment,
        so the file never needs to hold a secret."""
        from pipeline_opt.config import build, read_yaml

        given = {k: v for k, v in read_yaml(path).items() if v is not None}
        checked = build(cls, given, source=str(path))  # keys and types, errors naming the file
        return cls.from_env(env, **{k: getattr(checked, k) for k in given})

    def to_env(self) -> dict[str, str]:
        """The environment variables ``from_env`` reads back into these settings (to hand them to a process)."""
        env = {"AWS_REGION": self.region, "PIPELINE_OPT_S3_COMMIT_COORDINATION": self.commit_coordination}
        for name, value in (("AWS_ENDPOINT_URL", self.endpoint), ("AWS_ACCESS_KEY_ID", self.access_key_id),
                            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key),
                            ("AWS_SESSION_TOKEN", self.session_token)):
            if value:
                env[name] = value
        return env

    def with_credentials(self, access_key_id: str, secret_access_key: str) -> "ObjectStore":
        return replace(self, access_key_id=access_key_id, secret_access_key=secret_access_key)

    @property
    def allow_http(self) -> bool:
        return bool(self.endpoint and self.endpoint.startswith("http://"))

    def spark_confs(self) -> dict[str, str]:
        """Spark confs for ``s3a://`` paths (hadoop-aws); jars come from ``pipeline_opt.storage.jars``."""
        confs = {
            _H + "impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
            _H + "endpoint.region": self.region,
            _H + "path.style.access": str(self.path_style).lower(),
            _H + "connection.establish.timeout": str(self.connect_timeout_s * 1000),
            _H + "attempts.maximum": str(self.attempts),
            _H + "retry.limit": str(self.attempts),
        }
        if self.endpoint:
            confs[_H + "endpoint"] = self.endpoint
            confs[_H + "connection.ssl.enabled"] = str(not self.allow_http).lower()
        if self.access_key_id:
            assert self.secret_access_key is not None  # __post_init__: both keys or neither
            confs[_H + "access.key"] = self.access_key_id
            confs[_H + "secret.key"] = self.secret_access_key
            provider = "TemporaryAWSCredentialsProvider" if self.session_token else "SimpleAWSCredentialsProvider"
            confs[_H + "aws.credentials.provider"] = f"org.apache.hadoop.fs.s3a.{provider}"
            if self.session_token:
                confs[_H + "session.token"] = self.session_token
        if self.commit_coordination == "dynamodb":
            confs["spark.delta.logStore.s3a.impl"] = "io.delta.storage.S3DynamoDBLogStore"
            confs["spark.delta.logStore.s3.impl"] = "io.delta.storage.S3DynamoDBLogStore"
            ddb = "spark.io.delta.storage.S3DynamoDBLogStore.ddb."
            confs[ddb + "tableName"] = self.dynamodb_table
            confs[ddb + "region"] = self.region
        return confs

    def storage_options(self) -> dict[str, str]:
        """delta-rs ``storage_options`` (also understood by the loader's pyarrow filesystem)."""
        opts = {"AWS_REGION": self.region,
                "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": str(not self.path_style).lower(),
                "max_retries": str(self.attempts - 1), "retry_timeout": f"{self.connect_timeout_s * self.attempts}s",
                "connect_timeout": f"{self.connect_timeout_s}s"}
        if self.endpoint:
            opts["AWS_ENDPOINT_URL"] = self.endpoint
            opts["AWS_ALLOW_HTTP"] = str(self.allow_http).lower()
        if self.access_key_id:
            assert self.secret_access_key is not None  # __post_init__: both keys or neither
            opts["AWS_ACCESS_KEY_ID"] = self.access_key_id
            opts["AWS_SECRET_ACCESS_KEY"] = self.secret_access_key
            if self.session_token:
                opts["AWS_SESSION_TOKEN"] = self.session_token
        return opts

    def filesystem(self):
        """A pyarrow ``S3FileSystem`` with the same settings (fails fast: ``attempts`` tries, short timeouts)."""
        import pyarrow.fs as pafs

        kwargs = dict(region=self.region, connect_timeout=self.connect_timeout_s, request_timeout=30,
                      retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=self.attempts),
                      force_virtual_addressing=not self.path_style)
        if self.endpoint:
            url = urlparse(self.endpoint)
            kwargs.update(endpoint_override=url.netloc, scheme=url.scheme)
        if self.access_key_id:
            kwargs.update(access_key=self.access_key_id, secret_key=self.secret_access_key,
                          session_token=self.session_token)
        return pafs.S3FileSystem(**kwargs)

    def boto3_client(self):
        """A boto3 S3 client with the same settings (the writer lease needs conditional writes)."""
        from pipeline_opt.errors import require

        boto3 = require("boto3", "s3")
        config = require("botocore.config", "s3").Config(
            connect_timeout=self.connect_timeout_s, retries={"max_attempts": self.attempts, "mode": "standard"},
            s3={"addressing_style": "path" if self.path_style else "virtual"})
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region, config=config,
                            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
                            aws_session_token=self.session_token)

    def redacted(self) -> dict:
        """The settings without secrets (for logs and error messages)."""
        return {"endpoint": self.endpoint or "AWS", "region": self.region, "access_key_id": self.access_key_id,
                "path_style": self.path_style, "commit_coordination": self.commit_coordination}


def scheme_of(uri: str) -> str:
    """``s3a`` for ``s3a://b/k``, ``file`` for a local path."""
    return urlparse(str(uri)).scheme if "://" in str(uri) else "file"


def bucket_and_key(uri: str) -> tuple[str, str]:
    """(bucket, key prefix without slashes) of an ``s3://`` or ``s3a://`` URI."""
    url = urlparse(str(uri))
    if url.scheme not in S3_SCHEMES or not url.netloc:
        raise StorageError(f"{uri!r} is not an s3:// or s3a:// URI with a bucket")
    return url.netloc, url.path.strip("/")


def for_engine(uri: str, engine: Literal["spark", "delta-rs"]) -> str:
    """The same table for each engine: Spark's hadoop-aws wants ``s3a://``, delta-rs and pyarrow ``s3://``."""
    scheme = scheme_of(uri)
    if scheme not in S3_SCHEMES:
        return str(uri)
    rest = str(uri).split("://", 1)[1]
    return f"{'s3a' if engine == 'spark' else 's3'}://{rest}"
