"""Persistent workers follow the loader's epochs and resume points; pooled window blocks are never reused under a
batch that is still held. Spark-written tables with deletion vectors (conftest)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import torch
from deltalake import write_deltalake

from pipeline_opt.loader import DeltaDataset, DeltaLoader
from pipeline_opt.loader.blocks import BlockPool, PooledWindow


def _ds(path, **kw):
    return DeltaDataset(path, batch_size=40, shuffle=True, seed=3, shuffle_buffer=160, **kw)


def _keys(batches) -> list:
    return sorted(tuple(b["id"].tolist()) for b in batches)


def test_persistent_workers_reshuffle_each_epoch_like_fresh_ones(dv_table):
    path, expected = dv_table
    persistent = DeltaLoader(_ds(path), num_workers=2, persistent_workers=True)
    in_process = DeltaLoader(_ds(path))
    epochs = [(list(persistent), list(in_process)) for _ in range(3)]
    workers = {p.pid for p in persistent._workers[0]._iterator._workers}
    assert len(workers) == 2  # the same two processes served all three epochs
    for there, here in epochs:
        assert _keys(there) == _keys(here)
        assert sorted(torch.cat([b["id"] for b in there]).tolist()) == sorted(expected)
    assert _keys(epochs[0][0]) != _keys(epochs[1][0])  # a new epoch is a new shuffle
    assert persistent.io_stats()["files_opened"] == in_process.io_stats()["files_opened"] > 0  # this epoch only


def test_persistent_workers_resume_mid_epoch_and_from_a_state(dv_table):
    path, expected = dv_table
    loader = DeltaLoader(_ds(path), num_workers=2, persistent_workers=True)
    list(loader)  # epoch 0 starts the workers
    it = iter(loader)
    head = [next(it) for _ in range(5)]
    state = json.loads(json.dumps(loader.state_dict()))
    del it
    tail = list(loader)  # the same workers continue epoch 1 where it stopped
    assert len(head) + len(tail) == len(loader)
    assert sorted(torch.cat([b["id"] for b in head + tail]).tolist()) == sorted(expected)
    assert loader.epoch == 2 and state["epoch"] == 1
    workers = loader._workers
    loader.load_state_dict(state)  # back to the saved point, same version: the workers stay
    assert _keys(list(loader)) == _keys(tail) and loader._workers is workers


def test_a_held_batch_keeps_its_block_out_of_the_pool(tmp_path):
    write_deltalake(str(tmp_path / "t"), pa.table({"id": np.arange(4000), "x": np.arange(4000) * 0.5}))
    ds = DeltaDataset(tmp_path / "t", batch_size=100, shuffle=True, shuffle_buffer=1000)
    held = [(b["id"], b["id"].clone()) for b in DeltaLoader(ds)]  # every batch kept: no block may be reused
    assert all(torch.equal(a, b) for a, b in held)
    assert sorted(torch.cat([a for a, _ in held]).tolist()) == list(range(4000))


def _address(window: PooledWindow) -> int:
    return window.out("a").__array_interface__["data"][0]


def test_pool_reuses_a_block_only_when_nothing_refers_to_it():
    pool = BlockPool(keep=2)
    first = PooledWindow({"a": np.float64}, 100, pool)
    a = _address(first)
    batch = torch.from_numpy(first.out("a")[10:20])  # what a batch of the window is
    del first
    second = PooledWindow({"a": np.float64}, 100, pool)
    b = _address(second)
    assert b != a  # the batch still refers to the first block
    del batch
    assert _address(PooledWindow({"a": np.float64}, 100, pool)) == a  # now idle: reused
    assert _address(PooledWindow({"a": np.float64}, 100, pool)) == a  # the previous window was dropped at once
    assert _address(PooledWindow({"a": np.float64}, 10, pool)) == a and len(pool._blocks) == 2
