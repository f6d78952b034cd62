"""Correct rows: the loader yields exactly the live rows of the pinned snapshot of Spark-written Delta tables."""
from __future__ import annotations

import math

import pytest
import torch

from pipeline_opt.loader import DeltaDataset, DeltaLoader
from tests.loader.util import epoch_ids, ids_of


@pytest.mark.parametrize("name", ["dv", "overwrite", "evolve", "colmap", "dense"])
def test_exact_live_rows(tables, name):
    path, expected = tables[name]
    ids = epoch_ids(DeltaDataset(path, batch_size=64, fill_nulls={"extra": -1}))
    assert len(ids) == len(expected)
    assert set(ids) == expected


def test_deletion_vectors_are_applied_per_file(dv_table):
    path, expected = dv_table
    ds = DeltaDataset(path, batch_size=128)
    assert any(f.dv is not None for f in ds.snapshot.files)  # Spark wrote DVs, not rewritten files
    assert ds.facts()["total_rows"] == len(expected)


def test_values_follow_column_mapping_and_rename(tables):
    path, _ = tables["colmap"]
    ds = DeltaDataset(path, columns=["id", "k_renamed", "price", "half"], batch_size=100)
    assert ds.snapshot.physical["k_renamed"] != "k_renamed"  # really mapped to a physical name
    for b in DeltaLoader(ds):
        assert torch.equal(b["k_renamed"], (b["id"] % 7).to(b["k_renamed"].dtype))
        assert torch.allclose(b["price"], b["id"].double() * 0.25)
        assert torch.allclose(b["half"], b["id"].double() / 2)


def test_partition_column_values(dv_table):
    path, _ = dv_table
    for b in DeltaLoader(DeltaDataset(path, columns=["id", "grp"], batch_size=256)):
        assert torch.equal(b["grp"], (b["id"] % 3).to(b["grp"].dtype))


def test_schema_evolution_nulls(tables):
    path, _ = tables["evolve"]
    ds = DeltaDataset(path, columns=["id", "extra"], batch_size=50, fill_nulls={"extra": -1})
    for b in DeltaLoader(ds):
        old = b["id"] < 300
        assert torch.all(b["extra"][old] == -1)
        assert torch.equal(b["extra"][~old], b["id"][~old] * 10)


def test_integer_nulls_need_fill(tables):
    from pipeline_opt.loader import LoaderError

    path, _ = tables["evolve"]
    with pytest.raises(LoaderError, match="extra"):
        list(DeltaLoader(DeltaDataset(path, columns=["extra"], batch_size=50)))


def test_pinned_version_reads_old_rows(tables):
    path, _ = tables["overwrite"]
    assert set(epoch_ids(DeltaDataset(path, version=0))) == set(range(300))


def test_decimal_becomes_float64(dv_table):
    b = next(iter(DeltaLoader(DeltaDataset(dv_table[0], columns=["price"]))))
    assert b["price"].dtype == torch.float64


def test_table_changing_mid_epoch_does_not_change_the_epoch(spark, tmp_path):
    path = tmp_path / "moving"
    spark.range(0, 400, numPartitions=4).write.format("delta").save(str(path))
    ds = DeltaDataset(path, batch_size=50, shuffle=True, seed=3)
    it = iter(DeltaLoader(ds))
    first = [next(it) for _ in range(3)]
    spark.range(1000, 1100).write.format("delta").mode("overwrite").save(str(path))
    ids = ids_of(first + list(it))
    assert sorted(ids) == list(range(400))
    assert ds.version == 0 and math.isclose(len(ids) / 50, 8)


def test_partition_column_only(dv_table):
    path, expected = dv_table
    batches = list(DeltaLoader(DeltaDataset(path, columns=["grp"], batch_size=500)))
    assert sum(len(b["grp"]) for b in batches) == len(expected)


def test_big_file_path_reads_the_same_rows(tables):
    """A file larger than the window is read row group by row group; the rows must match the whole-file path."""
    path, expected = tables["dense"]
    small_window = DeltaDataset(path, columns=["id"], batch_size=500, shuffle_buffer=1000, shuffle=True)
    assert max(f.num_records for f in small_window.snapshot.files) > small_window.window_rows
    assert sorted(epoch_ids(small_window, num_workers=2)) == sorted(expected)
