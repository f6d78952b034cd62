"""Counting the bytes the loader fetches from remote storage.

Invariant: every byte read through ``open_counted`` from a remote filesystem is added to its counter; local files are
opened natively and not counted (nothing was fetched).
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.fs as pafs


class CountingFile:
    """A read-only file object that adds every byte it returns to ``counter[0]``."""

    def __init__(self, raw, counter):
        self._raw, self._counter = raw, counter

    def read(self, n=-1):
        data = self._raw.read(n) if n is not None and n >= 0 else self._raw.read()
        self._counter[0] += len(data)
        return data

    def seek(self, pos, whence=0):
        return self._raw.seek(pos, whence)

    def tell(self):
        return self._raw.tell()

    def size(self):
        return self._raw.size()

    def close(self):
        self._raw.close()

    @property
    def closed(self):
        return self._raw.closed

    def readable(self):
        return True

    def seekable(self):
        return True


def open_counted(fs: pafs.FileSystem, path: str, counter) -> pa.NativeFile:
    """Open ``path`` for random access; local files are read natively, remote ones counted."""
    raw = fs.open_input_file(path)
    if isinstance(fs, pafs.LocalFileSystem):
        return raw
    return pa.PythonFile(CountingFile(raw, counter), mode="r")
