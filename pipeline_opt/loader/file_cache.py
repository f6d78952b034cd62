"""A local disk cache of remote data files under a byte budget, with the eviction policy of the cache layer.

Invariants: files on disk never exceed ``capacity_bytes`` as the policy counts them (the policy's ``used_bytes``,
which includes its own metadata); the policy decides admission and eviction, the cache deletes exactly the files
the policy evicts. The policy state lives in the cache folder under a file lock, so every worker process and every
epoch share one budget and one policy. A file is written under a temporary name and renamed, so a reader never
sees half a file. Data files of a Delta table never change once written, so a cached copy is never stale.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import pickle
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import pyarrow as pa

from pipeline_opt.cache import policies
from pipeline_opt.errors import ConfigError
from pipeline_opt.units import parse_size


class FileCache:
    """Keeps whole data files in ``directory`` under ``capacity`` bytes (int or '2GB'), evicting by ``policy``."""

    def __init__(self, directory, capacity, policy: str = "lru"):
        self.directory = Path(directory)
        try:
            self.capacity_bytes = parse_size(capacity)
        except ValueError as e:
            raise ConfigError(f"file cache capacity: {e}") from None
        if self.capacity_bytes <= 0:
            raise ConfigError(f"file cache capacity must be positive, got {capacity!r}")
        self.policy_name = policy
        policies.make(policy, self.capacity_bytes)  # fail early on an unknown policy name

    def local_path(self, uri: str) -> Path:
        return self.directory / (hashlib.sha1(uri.encode()).hexdigest() + ".parquet")

    @contextmanager
    def _policy(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.directory / ".policy.pkl"
            policy = pickle.loads(state.read_bytes()) if state.exists() else None
            if policy is None or getattr(policy, "capacity_bytes", None) != self.capacity_bytes:
                policy = policies.make(self.policy_name, self.capacity_bytes)
            yield policy
            tmp = state.with_suffix(".tmp")
            tmp.write_bytes(pickle.dumps(policy))
            os.replace(tmp, state)

    def get(self, uri: str, size: int, fetch: Callable[[], bytes]) -> tuple:
        """(readable source, hit): a memory map of the cached copy, or the fetched bytes (``pa.Buffer``) when the
        policy did not admit the file. A memory map stays valid even if another process evicts the file."""
        path = self.local_path(uri)
        with self._policy() as policy:
            hit = policy.request(uri, size)
            for key in policy.pop_evicted():
                self.local_path(key).unlink(missing_ok=True)
            admitted = uri in policy
        if hit:
            try:
                return pa.memory_map(str(path)), True
            except FileNotFoundError:  # evicted by another process since our request, or not yet written
                pass
        data = fetch()
        if admitted:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            with self._policy() as policy:  # another process may have evicted it while we fetched
                if uri not in policy:
                    path.unlink(missing_ok=True)
        return pa.py_buffer(data), False

    def disk_bytes(self) -> int:
        """Bytes of cached data files on disk now."""
        return sum(p.stat().st_size for p in self.directory.glob("*.parquet"))
