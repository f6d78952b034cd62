"""Where data file bytes come from: a filesystem (local or object store), optionally through the file cache.

Invariants: a ``FileSource`` holds only picklable settings (storage options, a filesystem object, a ``FileCache``),
never an open handle, so it travels into worker processes; each process opens its own filesystem lazily. I/O
counters (files opened, bytes fetched from remote storage, cache hits and misses) are per process, and are added to
a shared array when a ``DeltaLoader`` attaches one, so the loader can report totals over all workers.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Mapping, Optional

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline_opt.delta.fs import resolve
from pipeline_opt.loader.counting import open_counted
from pipeline_opt.loader.file_cache import FileCache

# make_fragment(file_size=) is pyarrow 15+; Databricks Runtime 15.4 ships pyarrow 14.0.1
_FRAGMENT_SIZE = tuple(int(x) for x in pa.__version__.split(".")[:2]) >= (15, 0)

STAT_NAMES = ("files_opened", "bytes_fetched", "cache_hits", "cache_misses")


class FileSource:
    def __init__(self, storage_options: Optional[Mapping[str, str]] = None, filesystem=None, cache=None):
        self.storage_options = dict(storage_options or {}) or None
        self.filesystem = filesystem
        if isinstance(cache, Mapping):
            cache = FileCache(**cache)
        self.cache: Optional[FileCache] = cache
        self.shared = None  # multiprocessing Array of len(STAT_NAMES), attached by DeltaLoader
        self.stats = dict.fromkeys(STAT_NAMES, 0)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["stats"] = dict.fromkeys(STAT_NAMES, 0)
        state.pop("_lock", None)
        state.pop("_fs", None)
        return state

    @property
    def lock(self) -> threading.Lock:
        """Guards the counters: a worker decodes windows in more than one thread."""
        if "_lock" not in self.__dict__:
            self.__dict__["_lock"] = threading.Lock()
        return self.__dict__["_lock"]

    def opener(self) -> Callable[[str, Any], pq.ParquetFile]:
        """A function (uri, DataFile) -> ``pq.ParquetFile`` for this process."""
        cache: dict = {}

        def open_file(uri: str, data_file) -> pq.ParquetFile:
            if "fs" not in cache:
                cache["fs"] = resolve(uri, self.storage_options, self.filesystem)[0]
            fs, path = cache["fs"], resolve(uri, self.storage_options, cache["fs"])[1]
            self._add("files_opened", 1)
            if self.cache is not None:
                table = uri[: -len(data_file.path) - 1] if uri.endswith("/" + data_file.path) else None
                return self._through_cache(fs, path, uri, data_file.size, table)
            if isinstance(fs, pafs.LocalFileSystem):
                return pq.ParquetFile(path)
            counter = [0]
            handle = open_counted(fs, path, counter)
            pf = pq.ParquetFile(handle, pre_buffer=True)
            self._add("bytes_fetched", counter[0])
            return _Counted(pf, counter, self)

        return open_file

    def filesystem_for(self, uri: str):
        """The pyarrow filesystem that serves ``uri`` (built once per process)."""
        if "_fs" not in self.__dict__:
            self.__dict__["_fs"] = resolve(uri, self.storage_options, self.filesystem)[0]
        return self.__dict__["_fs"]

    def locator(self) -> Callable[[str, Any], Optional[dict]]:
        """A function (table root URI, DataFile) -> keyword arguments of ``ParquetFileFormat.make_fragment`` (a
        local path and its filesystem, or an in-memory buffer), or None when the file should be read row group by
        row group (remote storage without a file cache, so bytes fetched are counted)."""
        roots: dict = {}  # table root URI -> (filesystem, root path): parse each root once, not once per file

        def locate(root: str, data_file):
            if root not in roots:
                roots[root] = resolve(root, self.storage_options, self.filesystem)
            fs, root_path = roots[root]
            uri, path = f"{root}/{data_file.path}", f"{root_path.rstrip('/')}/{data_file.path}"
            if self.cache is not None:
                self._add("files_opened", 1)
                where = self._cached(fs, path, uri, data_file.size, root)
                return {"file": pa.BufferReader(where) if isinstance(where, pa.Buffer) else where}
            if isinstance(fs, pafs.LocalFileSystem):
                self._add("files_opened", 1)
                size = {"file_size": data_file.size} if _FRAGMENT_SIZE else {}  # the log's size saves a stat
                return {"file": path, "filesystem": fs, **size}
            return None

        return locate

    def bytes_reader(self, keep: int = 4):
        """A function uri -> bytes for small side files (deletion vectors), remembering the last ``keep``."""
        recent: dict = {}

        def read(uri: str) -> bytes:
            if uri in recent:
                return recent[uri]
            fs, path = resolve(uri, self.storage_options, self.filesystem)
            with fs.open_input_stream(path) as fh:
                data = fh.read()
            if not isinstance(fs, pafs.LocalFileSystem):
                self._add("bytes_fetched", len(data))
            if len(recent) >= keep:
                recent.pop(next(iter(recent)))
            recent[uri] = data
            return data

        return read

    def _through_cache(self, fs, path: str, uri: str, size: int, table: Optional[str]) -> pq.ParquetFile:
        where = self._cached(fs, path, uri, size, table)
        return pq.ParquetFile(pa.BufferReader(where) if isinstance(where, pa.Buffer) else where)

    def _cached(self, fs, path: str, uri: str, size: int, table: Optional[str] = None):
        """A memory map of the cached copy, or the file's bytes (``pa.Buffer``); ``table``: the table's root."""
        def fetch() -> bytes:
            with fs.open_input_file(path) as fh:
                data = fh.read()
            self._add("bytes_fetched", len(data))
            return data

        assert self.cache is not None  # callers check self.cache first
        where, hit = self.cache.get(uri, size, fetch, table)
        self._add("cache_hits" if hit else "cache_misses", 1)
        return where

    def _add(self, name: str, n: int) -> None:
        if n:
            with self.lock:
                self.stats[name] += n

    def flush_stats(self) -> None:
        """Add this process's counters to the shared array (if any) and reset them."""
        if self.shared is not None:
            with self.lock:
                stats, self.stats = self.stats, dict.fromkeys(STAT_NAMES, 0)
            with self.shared.get_lock():
                for i, name in enumerate(STAT_NAMES):
                    self.shared[i] += stats[name]


class _Counted:
    """A ``ParquetFile`` whose later reads keep adding to the source's ``bytes_fetched``."""

    def __init__(self, pf: pq.ParquetFile, counter: list, source: FileSource):
        self._pf, self._counter, self._source, self._seen = pf, counter, source, counter[0]

    def __getattr__(self, name):
        return getattr(self._pf, name)

    def read_row_group(self, *args, **kwargs):
        table = self._pf.read_row_group(*args, **kwargs)
        self._source._add("bytes_fetched", self._counter[0] - self._seen)
        self._seen = self._counter[0]
        return table
