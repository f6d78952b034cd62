"""Pluggable filesystems and the local file cache: exact rows, bytes fetched counted, disk kept under budget."""
from __future__ import annotations

import fsspec
import pytest

from pipeline_opt.errors import ConfigError
from pipeline_opt.loader import DeltaDataset, DeltaLoader, FileCache
from tests.loader.util import ids_of


def _table_bytes(ds) -> int:
    return sum(f.size for f in ds.snapshot.files)


def _epoch(ds, workers=0):
    loader = DeltaLoader(ds, num_workers=workers)
    return ids_of(list(loader)), loader.io_stats()


def test_fsspec_filesystem_counts_bytes(dv_table):
    path, expected = dv_table
    ds = DeltaDataset(path, filesystem=fsspec.filesystem("file"), batch_size=100)
    ids, stats = _epoch(ds, workers=2)
    assert sorted(ids) == sorted(expected)
    assert stats["files_opened"] == len(ds.snapshot.files)
    assert 0 < stats["bytes_fetched"] <= 2 * _table_bytes(ds)


def test_cache_under_budget_evicts(dv_table, tmp_path):
    path, expected = dv_table
    probe = DeltaDataset(path)
    budget = _table_bytes(probe) // 3
    cache = FileCache(tmp_path / "cache", budget, policy="lru")
    ds = DeltaDataset(path, filesystem=fsspec.filesystem("file"), file_cache=cache, batch_size=100, shuffle=True)
    for _ in range(2):
        ids, stats = _epoch(ds, workers=2)
        assert sorted(ids) == sorted(expected)
        assert cache.disk_bytes() <= budget
    assert stats["cache_misses"] > 0 and stats["bytes_fetched"] > 0


def test_cache_hits_when_table_fits(dv_table, tmp_path):
    path, expected = dv_table
    cache = FileCache(tmp_path / "cache", "10MB", policy="lru")
    ds = DeltaDataset(path, filesystem=fsspec.filesystem("file"), file_cache=cache, batch_size=100)
    _, first = _epoch(ds)
    ids, second = _epoch(ds, workers=2)
    assert sorted(ids) == sorted(expected)
    assert first["cache_misses"] == len(ds.snapshot.files)
    assert second["cache_hits"] == len(ds.snapshot.files)
    # only deletion-vector files are fetched again (once per worker process); data files all come from the cache
    dv_bytes = sum(p.stat().st_size for p in path.glob("deletion_vector_*.bin"))
    assert second["bytes_fetched"] <= 2 * dv_bytes < first["bytes_fetched"] / 5


@pytest.mark.parametrize("capacity", [0, "lots"])
def test_bad_capacity(tmp_path, capacity):
    with pytest.raises(ConfigError):
        FileCache(tmp_path, capacity)
