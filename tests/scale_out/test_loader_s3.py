"""The loader over a Delta table on S3 (moto): the second epoch reads from the local file cache."""
import pytest

from pipeline_opt.loader import DeltaDataset, DeltaLoader, FileCache
from tests.scale_out.conftest import BUCKET, write_small_table

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def s3_table(s3):
    uri = f"s3://{BUCKET}/loader-events"
    write_small_table(uri, commits=6, rows=500, storage_options=s3.storage_options())
    return uri


def _epoch(loader) -> tuple[int, dict]:
    rows = sum(len(batch["id"]) for batch in loader)
    return rows, loader.io_stats()


def test_warm_epoch_fetches_under_five_percent_of_the_cold_one(s3, s3_table, tmp_path):
    cache = FileCache(tmp_path / "cache", "64MB")
    ds = DeltaDataset(s3_table, columns=["id", "x", "y"], batch_size=256, storage_options=s3.storage_options(),
                      file_cache=cache)
    loader = DeltaLoader(ds)
    cold_rows, cold = _epoch(loader)
    warm_rows, warm = _epoch(loader)
    assert cold_rows == warm_rows == 3000
    assert cold["bytes_fetched"] > 0 and cold["cache_misses"] == 18
    assert warm["cache_hits"] == 18 and warm["cache_misses"] == 0
    assert warm["bytes_fetched"] <= 0.05 * cold["bytes_fetched"]
    assert cache.disk_bytes() <= cache.capacity_bytes


def test_a_budget_below_the_table_keeps_disk_under_budget_and_refetches(s3, s3_table, tmp_path):
    sizes = DeltaDataset(s3_table, storage_options=s3.storage_options()).snapshot
    total = sum(f.size for f in sizes.files)
    cache = FileCache(tmp_path / "small", total // 3)
    loader = DeltaLoader(DeltaDataset(s3_table, columns=["id"], storage_options=s3.storage_options(),
                                      file_cache=cache))
    _, cold = _epoch(loader)
    _, warm = _epoch(loader)
    assert cache.disk_bytes() <= total // 3
    assert warm["bytes_fetched"] > 0.5 * cold["bytes_fetched"]  # LRU over a sequential scan: mostly misses
