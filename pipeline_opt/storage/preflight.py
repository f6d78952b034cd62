"""Fail fast, with one clear error, when an object store cannot serve a table.

Invariants: ``preflight`` is read-only (one HeadBucket and one listing of the table prefix; it writes nothing), runs
in well under a second on a healthy store and within ``attempts × connect_timeout_s`` on a dead one; every failure
is exactly one of ``EndpointUnreachableError``, ``CredentialsError``, ``BucketNotFoundError``, each naming the
endpoint, the access key id (never the secret) or the bucket. ``explain`` maps the same failures raised later by
delta-rs, pyarrow, boto3 or Spark's hadoop-aws to the same three errors.
"""
from __future__ import annotations

from typing import Optional

from pipeline_opt.storage.settings import ObjectStore, StorageError, bucket_and_key


class EndpointUnreachableError(StorageError):
    """Nothing answers at the endpoint (refused, timed out, unknown host)."""


class CredentialsError(StorageError):
    """The store answered but rejected the signature or the access key."""


class BucketNotFoundError(StorageError):
    """The store answered, the credentials are good, the bucket does not exist."""


_UNREACHABLE = ("could not connect", "connection refused", "connectexception", "network_connection",
                "error sending request", "unknownhost", "connect timed out", "name or service not known",
                "sdkclientexception: unable to execute http request", "connecttimeout", "endpointconnectionerror")
_CREDENTIALS = ("signaturedoesnotmatch", "invalidaccesskeyid", "access_denied", "accessdenied", "403",
                "lacked the necessary privileges", "forbidden", "invalidclienttokenid", "expiredtoken")
_NO_BUCKET = ("nosuchbucket", "bucket does not exist", "the specified bucket does not exist")


def explain(error: BaseException, uri: str, store: ObjectStore) -> Optional[StorageError]:
    """The clear error for ``error`` raised while using ``uri`` through ``store``, or None if it is none of the
    three."""
    text = f"{type(error).__name__}: {error}".lower()
    bucket = bucket_and_key(uri)[0]
    where = store.endpoint or f"AWS S3 ({store.region})"
    if any(p in text for p in _NO_BUCKET):
        return BucketNotFoundError(f"bucket {bucket!r} does not exist at {where} (table {uri})")
    if any(p in text for p in _UNREACHABLE):
        return EndpointUnreachableError(f"object store endpoint {where} is unreachable "
                                        f"({store.attempts} attempt(s), {store.connect_timeout_s}s connect timeout)")
    if any(p in text for p in _CREDENTIALS):
        return CredentialsError(f"{where} rejected the credentials of access key id {store.access_key_id!r} "
                                f"for bucket {bucket!r} (wrong secret, expired token or no permission)")
    return None


def preflight(uri: str, store: ObjectStore) -> None:
    """Check that ``store`` reaches the bucket of ``uri`` with valid credentials; raise one clear error if not."""
    import pyarrow.fs as pafs

    bucket, key = bucket_and_key(uri)
    fs = store.filesystem()
    try:
        info = fs.get_file_info(bucket)
        if info.type == pafs.FileType.NotFound:
            raise BucketNotFoundError(f"bucket {bucket!r} does not exist at {store.endpoint or 'AWS S3'} "
                                      f"(table {uri})")
        # HeadBucket may succeed anonymously on some servers; a listing proves the signature is accepted.
        fs.get_file_info(pafs.FileSelector(f"{bucket}/{key}".rstrip("/"), allow_not_found=True))
    except OSError as e:
        raise explain(e, uri, store) or StorageError(f"{uri}: object store error: {str(e)[:300]}") from None
