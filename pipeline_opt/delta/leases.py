"""Reader leases: a running reader pins a table version, and our VACUUM keeps every file that version needs.

A lease is one small JSON file under ``<table>/_pipeline_opt_leases/`` (Delta's VACUUM skips folders that start with
``_``): the pinned version, that version's commit time, the holder and an expiry. A reader renews it while it runs
and deletes it when it ends; a reader that dies leaves a lease that simply expires.

Invariant: a file of the pinned version that a later commit removed carries a removal time after the pinned
version's commit time, so a VACUUM whose horizon lies before that commit time (minus ``CLOCK_SKEW_S``) deletes none
of them (``retention_for``). A lease whose file is not valid JSON of this shape is ignored, never trusted.
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Mapping, Optional

import pyarrow.fs as pafs

from pipeline_opt.delta.fs import resolve
from pipeline_opt.delta.log import commit_timestamp_ms
from pipeline_opt.errors import DeltaLogError

LEASE_DIR = "_pipeline_opt_leases"
DEFAULT_TTL_S = 3600.0
CLOCK_SKEW_S = 600.0  # writers' clocks may differ from the reader's: keep this much more


@dataclass(frozen=True)
class Lease:
    lease_id: str
    version: int
    version_time: float  # seconds since the epoch, the pinned version's commit time
    holder: str
    expires_at: float

    def live(self, now: float) -> bool:
        return self.expires_at > now


def commit_time(uri: str, version: int, storage_options: Optional[Mapping[str, str]] = None) -> float:
    """The commit time of ``version``: its commitInfo timestamp, else the commit file's modification time."""
    fs, root = resolve(uri, storage_options)
    log_dir = f"{root.rstrip('/')}/_delta_log"
    try:
        stamp = commit_timestamp_ms(fs, log_dir, version)
        if stamp is not None:
            return stamp / 1000.0
        info = fs.get_file_info(f"{log_dir}/{version:020d}.json")
    except (OSError, DeltaLogError):
        info = None
    if info is not None and info.mtime is not None:
        return info.mtime.timestamp()
    return time.time() - DEFAULT_TTL_S * 24 * 365  # unknown (log cleaned up): treat it as very old, so VACUUM keeps


class LeaseHolder:
    """Takes a lease on ``uri`` at ``version``, renews it (``renew`` is cheap to call often) and releases it."""

    def __init__(self, uri: str, version: int, storage_options: Optional[Mapping[str, str]] = None,
                 ttl_s: float = DEFAULT_TTL_S):
        self.uri, self.version, self.ttl_s = uri, int(version), float(ttl_s)
        self._fs, root = resolve(uri, storage_options)
        self._dir = f"{root.rstrip('/')}/{LEASE_DIR}"
        self.lease = Lease(uuid.uuid4().hex, self.version, commit_time(uri, version, storage_options),
                           f"{socket.gethostname()}:{os.getpid()}", 0.0)
        self._written_at = 0.0

    @property
    def path(self) -> str:
        return f"{self._dir}/{self.lease.lease_id}.json"

    def renew(self, now: Optional[float] = None) -> None:
        """Write the lease with a fresh expiry, at most once per tenth of the time to live."""
        now = time.time() if now is None else now
        if now - self._written_at < self.ttl_s / 10:
            return
        self.lease = Lease(**{**asdict(self.lease), "expires_at": now + self.ttl_s})
        self._fs.create_dir(self._dir, recursive=True)
        with self._fs.open_output_stream(self.path) as out:  # one PUT on object stores, so readers see all or none
            out.write(json.dumps(asdict(self.lease)).encode())
        self._written_at = now

    def release(self) -> None:
        try:
            self._fs.delete_file(self.path)
        except OSError:
            pass  # already gone, or never written: nothing holds the version any more


def active_leases(uri: str, storage_options: Optional[Mapping[str, str]] = None,
                  now: Optional[float] = None) -> list[Lease]:
    """The unexpired, well-formed leases on the table at ``uri``."""
    now = time.time() if now is None else now
    fs, root = resolve(uri, storage_options)
    folder = f"{root.rstrip('/')}/{LEASE_DIR}"
    try:
        infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    except OSError:
        return []
    leases = (_read_lease(fs, info.path) for info in infos if info.path.endswith(".json"))
    return sorted((lease for lease in leases if lease is not None and lease.live(now)), key=lambda x: x.version)


def _read_lease(fs: pafs.FileSystem, path: str) -> Optional[Lease]:
    try:
        with fs.open_input_stream(path) as stream:
            data = json.loads(stream.read())
        lease = Lease(str(data["lease_id"]), int(data["version"]), float(data["version_time"]),
                      str(data["holder"]), float(data["expires_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return lease if lease.version >= 0 else None


def retention_for(requested_hours: float, leases: list[Lease], now: Optional[float] = None) -> float:
    """The retention that keeps every leased version's files: at least ``requested_hours``."""
    now = time.time() if now is None else now
    oldest = min((lease.version_time for lease in leases), default=None)
    if oldest is None:
        return requested_hours
    held = (now - oldest + CLOCK_SKEW_S) / 3600.0
    return max(requested_hours, float(int(held) + 1))  # whole hours, rounded up, for a readable VACUUM statement
