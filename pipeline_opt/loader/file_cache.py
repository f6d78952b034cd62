"""A local disk cache of remote data files under a byte budget, with the eviction policy of the cache layer.

Invariants: files on disk never exceed ``capacity_bytes`` as the policy counts them (the policy's ``used_bytes``,
which includes its own metadata); the policy decides admission and eviction, the cache deletes exactly the files
the policy evicts. The policy is shared by every worker process and every epoch through the cache folder
(``cache.shared_state``: a JSON snapshot and a journal under a file lock, never pickle); state that does not
validate is rebuilt from the files in the folder, with one warning line. A file is written under a temporary name
and renamed, so a reader never sees half a file. Data files of a Delta table never change once written, so a
cached copy is never stale. Readers that know their future (a loader's seeded file order, a maintenance schedule)
``announce`` it; plan-aware policies (``planned``) use it, the others ignore it at no cost.
"""
from __future__ import annotations

import hashlib
import inspect
import os
from pathlib import Path
from typing import Callable, Collection, Iterable, Optional

import pyarrow as pa

from pipeline_opt.cache import plans, policies
from pipeline_opt.cache.shared_state import SharedPolicy
from pipeline_opt.cache.state import StateError, encode
from pipeline_opt.errors import ConfigError
from pipeline_opt.units import format_size, parse_size


class FileCacheBudgetError(ConfigError):
    """The budget cannot hold the table's largest file."""


class FileCache:
    """Keeps whole data files in ``directory`` under ``capacity`` bytes (int or '2GB'), evicting by ``policy``.

    ``pins`` / ``exclusions``: tables (root URI or last path component) the ``planned`` policy always keeps / never
    admits; ``record``: a file that receives every request and announcement (a trace of the real run, see
    ``cache.workload.read_record``); ``options``: further constructor arguments of the policy."""

    def __init__(self, directory, capacity, policy: str = "lru", pins: Iterable[str] = (),
                 exclusions: Iterable[str] = (), record=None, **options):
        self.directory = Path(directory)
        self.record = Path(record) if record is not None else None
        try:
            self.capacity_bytes = parse_size(capacity)
        except ValueError as e:
            raise ConfigError(f"file cache capacity: {e}") from None
        if self.capacity_bytes <= 0:
            raise ConfigError(f"file cache capacity must be positive, got {capacity!r}")
        self.policy_name = policy
        self.options = dict(options)
        if pins or exclusions:
            if not plans.supports_plans(policies.policy_class(policy)):
                raise ConfigError(f"file cache pins and exclusions need the planned policy, not {policy!r}")
            self.options.update(pins=sorted(pins), exclusions=sorted(exclusions))
        if any("slow_us" in inspect.signature(vars(c)["__init__"]).parameters
               for c in policies.policy_class(policy).__mro__ if "__init__" in vars(c)):
            # every process replays the shared journal and must reach the same state: no timing-based fallbacks
            self.options.setdefault("slow_us", float("inf"))
        try:
            encode(policies.make(policy, self.capacity_bytes, **self.options))  # fail early: name, options, state
        except StateError as e:
            raise ConfigError(f"file cache policy {policy!r} cannot be shared between processes: {e}") from None
        except TypeError as e:
            raise ConfigError(f"file cache policy {policy!r} does not take these options: {e}") from None
        self._shared: Optional[SharedPolicy] = None

    @classmethod
    def from_config(cls, directory, capacity, config) -> "FileCache":
        """A file cache with the policy, pins and exclusions of a ``CacheConfig`` (``conf/cache.yml``)."""
        return cls(directory, capacity, policy=config.file_cache_policy, pins=config.pins,
                   exclusions=config.exclusions)

    def __getstate__(self):  # worker processes get the settings, not this process's in-memory policy
        return {**self.__dict__, "_shared": None}

    @property
    def shared(self) -> SharedPolicy:
        if self._shared is None:
            self._shared = SharedPolicy(self.directory, self.policy_name, self.capacity_bytes, self.options,
                                        self._contents, self._remove, record=self.record)
        return self._shared

    @staticmethod
    def key(uri: str) -> str:
        return hashlib.sha1(uri.encode()).hexdigest()

    def local_path(self, uri: str) -> Path:
        return self.directory / (self.key(uri) + ".parquet")

    def _contents(self) -> list:
        """(key, size) of the cached files present, oldest first."""
        files = [(p.stat().st_mtime_ns, p.stem, p.stat().st_size) for p in self.directory.glob("*.parquet")]
        return [(k, s) for _, k, s in sorted(files)]

    def _remove(self, key: str) -> None:
        (self.directory / f"{key}.parquet").unlink(missing_ok=True)

    # -- plans ---------------------------------------------------------------------------------------------------
    @property
    def takes_plans(self) -> bool:
        """Whether the policy uses announcements (if not, announcing costs nothing: callers may skip it)."""
        return plans.supports_plans(policies.policy_class(self.policy_name))

    def announce(self, source: str, uris: list, start_after: int = 0, known: Optional[Collection[str]] = None) -> int:
        """``source`` will read ``uris`` in this order, ``start_after`` reads from now; returns how many positions
        the policy kept (0: it ignores plans). With ``known`` (the snapshot's file URIs), files not in it are
        ignored with one warning."""
        if not self.takes_plans:
            return 0
        if known is not None:
            uris = plans.known_only(uris, known, f"plan of {source}")
        with self.shared.session() as s:
            return s.announce(source, [self.key(u) for u in uris], start_after)

    def withdraw(self, source: str) -> None:
        if self.takes_plans:
            with self.shared.session() as s:
                s.withdraw(source)

    def check_fits(self, files: Iterable[tuple]) -> None:
        """Refuses (one line) a budget that cannot hold the largest of ``(uri, size)`` files with its metadata."""
        largest = max(files, key=lambda f: f[1], default=None)
        if largest is None:
            return
        probe = policies.make(self.policy_name, self.capacity_bytes, **self.options)
        if not probe.fits(int(largest[1])):
            raise FileCacheBudgetError(
                f"file cache budget {format_size(self.capacity_bytes)} ({self.capacity_bytes} B) is smaller than "
                f"the largest file {largest[0]} ({format_size(largest[1])}) with its metadata")

    # -- reads -------------------------------------------------------------------------------------------------
    def get(self, uri: str, size: int, fetch: Callable[[], bytes], table: Optional[str] = None) -> tuple:
        """(readable source, hit): a memory map of the cached copy, or the fetched bytes (``pa.Buffer``) when the
        policy did not admit the file. A memory map stays valid even if another process evicts the file."""
        key, path = self.key(uri), self.local_path(uri)
        with self.shared.session() as s:
            hit = s.request(key, size, table)
            admitted = key in s
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
            with self.shared.session() as s:  # another process may have evicted it while we fetched
                if key not in s:
                    path.unlink(missing_ok=True)
        return pa.py_buffer(data), False

    def disk_bytes(self) -> int:
        """Bytes of cached data files on disk now."""
        return sum(p.stat().st_size for p in self.directory.glob("*.parquet"))
