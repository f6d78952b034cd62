"""Worker processes: fork (default on Linux) and spawn both work; workers never use delta-rs."""
from __future__ import annotations

import pytest
from deltalake import DeltaTable
from torch.utils.data import DataLoader

from pipeline_opt.loader import DeltaDataset, DeltaLoader
from tests.loader.util import ids_of


def test_fork_while_parent_holds_a_delta_table(dv_table):
    path, expected = dv_table
    held = DeltaTable(str(path))  # a live delta-rs runtime in the parent must not break forked workers
    ids = ids_of(list(DeltaLoader(DeltaDataset(path, batch_size=100), num_workers=2)))
    assert sorted(ids) == sorted(expected) and held.version() >= 0


@pytest.mark.slow
def test_spawn_workers(dv_table):
    path, expected = dv_table
    loader = DeltaLoader(DeltaDataset(path, batch_size=100, shuffle=True), num_workers=1,
                         multiprocessing_context="spawn")
    assert sorted(ids_of(list(loader))) == sorted(expected)


def test_plain_torch_dataloader(dv_table):
    path, expected = dv_table
    ds = DeltaDataset(path, batch_size=100, shuffle=True)
    batches = list(DataLoader(ds, batch_size=None, num_workers=2))
    assert len(batches) == len(ds) and sorted(ids_of(batches)) == sorted(expected)
    assert all("__position__" not in b for b in batches)
