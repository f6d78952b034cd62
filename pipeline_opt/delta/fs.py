"""Filesystems for table URIs: local paths and object stores, as pyarrow filesystems.

Invariants: a URI maps to one pyarrow ``FileSystem`` plus a path inside it; a caller-supplied filesystem (pyarrow or
fsspec) always wins over one derived from the URI; ``storage_options`` use delta-rs key names, so one mapping serves
both the Delta log (delta-rs) and the files read beside it (pyarrow).
"""
from __future__ import annotations

from typing import Mapping, Optional
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from pipeline_opt.errors import PipelineOptError

# delta-rs / object_store option names -> pyarrow S3FileSystem keyword
_S3_KEYS = {
    "aws_access_key_id": "access_key", "access_key_id": "access_key",
    "aws_secret_access_key": "secret_key", "secret_access_key": "secret_key",
    "aws_session_token": "session_token", "session_token": "session_token",
    "aws_region": "region", "region": "region",
}


def split_uri(uri: str) -> tuple[str, str]:
    """(scheme, path inside the filesystem): ``s3://b/k`` → ('s3', 'b/k'); a local path → ('file', '/abs/path')."""
    if "://" not in uri:
        return "file", uri
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return "file", unquote(parsed.path)
    return parsed.scheme, parsed.netloc + unquote(parsed.path)


def _s3(options: Mapping[str, str]) -> pafs.FileSystem:
    kwargs: dict = {}
    for key, value in options.items():
        k = key.lower()
        if k in _S3_KEYS:
            kwargs[_S3_KEYS[k]] = value
        elif k in ("aws_endpoint_url", "endpoint_url", "aws_endpoint", "endpoint"):
            scheme, _, rest = str(value).partition("://")
            kwargs["endpoint_override"] = rest or scheme
            if rest:
                kwargs["scheme"] = scheme
        elif k in ("aws_allow_http", "allow_http") and str(value).lower() == "true":
            kwargs.setdefault("scheme", "http")
    return pafs.S3FileSystem(**kwargs)


def make_filesystem(uri: str, storage_options: Optional[Mapping[str, str]] = None,
                    filesystem=None) -> pafs.FileSystem:
    """The pyarrow filesystem that serves ``uri`` (fsspec filesystems are wrapped)."""
    if filesystem is not None:
        if isinstance(filesystem, pafs.FileSystem):
            return filesystem
        return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
    scheme, _ = split_uri(uri)
    if scheme == "file":
        return pafs.LocalFileSystem()
    if scheme in ("s3", "s3a"):
        return _s3(storage_options or {})
    try:
        return pafs.FileSystem.from_uri(uri)[0]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        import fsspec
    except ImportError:
        raise PipelineOptError(f"{uri}: no filesystem for scheme {scheme!r}; pass filesystem=") from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem(scheme, **dict(storage_options or {}))))


def resolve(uri: str, storage_options: Optional[Mapping[str, str]] = None,
            filesystem=None) -> tuple[pafs.FileSystem, str]:
    """(pyarrow filesystem, path inside it) for ``uri``."""
    return make_filesystem(uri, storage_options, filesystem), split_uri(uri)[1]
