"""Filters: pushdown skips files the Delta log rules out; the rows delivered are exactly the matching live rows."""
from __future__ import annotations

from collections import Counter

import pyarrow.compute as pc
import pytest

from pipeline_opt.loader import DeltaDataset, DeltaLoader
from tests.loader.util import epoch_ids, ids_of


def test_partition_filter_skips_files(dv_table):
    path, expected = dv_table
    ds = DeltaDataset(path, filter=[("grp", "=", 1)], batch_size=100)
    assert sorted(epoch_ids(ds)) == sorted(i for i in expected if i % 3 == 1)
    assert ds.facts()["files_skipped_by_filter"] >= 2  # the grp=0 and grp=2 files were never opened


def test_stats_filter_skips_files(dv_table):
    path, expected = dv_table
    ds = DeltaDataset(path, filter=[("id", ">=", 1000)], batch_size=100)
    assert sorted(epoch_ids(ds)) == sorted(i for i in expected if i >= 1000)
    assert ds.facts()["files_skipped_by_filter"] >= 3  # the first append's files all have max(id) < 1000


def test_or_of_ands(dv_table):
    path, expected = dv_table
    ds = DeltaDataset(path, filter=[[("grp", "=", 0), ("id", "<", 300)], [("id", "in", [1998, 1999])]])
    want = {i for i in expected if (i % 3 == 0 and i < 300) or i in (1998, 1999)}
    assert sorted(epoch_ids(ds)) == sorted(want)


def test_expression_filter_on_renamed_column(tables):
    path, expected = tables["colmap"]
    ds = DeltaDataset(path, filter=(pc.field("k_renamed") == 3) & (pc.field("id") < 500), batch_size=32)
    assert sorted(epoch_ids(ds)) == sorted(i for i in expected if i % 7 == 3 and i < 500)


def test_filtered_shards_are_even_and_exact(dv_table):
    path, expected = dv_table
    want = {i for i in expected if i % 7 < 3}
    seen, counts = Counter(), set()
    for rank in range(2):
        ds = DeltaDataset(path, filter=pc.field("k") < 3, batch_size=64, shuffle=True, rank=rank,
                          world_size=2, drop_last=True, shuffle_buffer=256)
        batches = list(DeltaLoader(ds, num_workers=2))
        counts.add(len(batches))
        seen.update(ids_of(batches))
    assert len(counts) == 1 and set(seen.values()) == {1}
    assert set(seen) <= want and len(want) - len(seen) < 2 * 64


def test_bad_filter_shape(dv_table):
    from pipeline_opt.loader import LoaderError

    with pytest.raises(LoaderError, match="~"):
        DeltaDataset(dv_table[0], filter=[("id", "~", 1)])
