"""Resume: after load_state_dict the loader yields exactly the batches not yet yielded, with any worker count."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from pipeline_opt.loader import DeltaDataset, DeltaLoader
from tests.loader.util import ids_of


def _ds(path, **kw):
    return DeltaDataset(path, batch_size=40, shuffle=True, seed=11, shuffle_buffer=160, **kw)


@pytest.mark.parametrize("before,after,stop", [(2, 0, 7), (0, 2, 13), (2, 1, 1)])
def test_resume_with_other_worker_count(dv_table, before, after, stop):
    path, expected = dv_table
    loader = DeltaLoader(_ds(path), num_workers=before)
    it = iter(loader)
    head = [next(it) for _ in range(stop)]
    state = json.loads(json.dumps(loader.state_dict()))  # survives JSON (a checkpoint file)
    del it
    assert len(json.dumps(state)) < 2000  # bytes, not rows
    resumed = DeltaLoader(_ds(path), num_workers=after)
    resumed.load_state_dict(state)
    tail = list(resumed)
    assert len(head) + len(tail) == len(resumed)
    ids = Counter(ids_of(head + tail))
    assert set(ids) == expected and set(ids.values()) == {1}
    assert resumed.epoch == state["epoch"] + 1


def test_resume_matches_uninterrupted_batches(dv_table):
    path, _ = dv_table
    full = [tuple(b["id"].tolist()) for b in DeltaLoader(_ds(path))]
    loader = DeltaLoader(_ds(path))
    it = iter(loader)
    head = [tuple(next(it)["id"].tolist()) for _ in range(5)]
    resumed = DeltaLoader(_ds(path), num_workers=2)
    resumed.load_state_dict(loader.state_dict())
    tail = [tuple(b["id"].tolist()) for b in resumed]
    assert sorted(head + tail) == sorted(full)


def test_resume_in_second_epoch(dv_table):
    path, expected = dv_table
    loader = DeltaLoader(_ds(path))
    list(loader)
    it = iter(loader)
    head = [next(it) for _ in range(3)]
    state = loader.state_dict()
    assert state["epoch"] == 1
    resumed = DeltaLoader(_ds(path))
    resumed.load_state_dict(state)
    assert sorted(ids_of(head + list(resumed))) == sorted(expected)


def test_resume_repins_the_saved_version(tables):
    path, _ = tables["overwrite"]
    old = DeltaLoader(DeltaDataset(path, version=0, batch_size=50))
    it = iter(old)
    head = [next(it) for _ in range(2)]
    resumed = DeltaLoader(DeltaDataset(path, batch_size=50))  # latest = version 1
    resumed.load_state_dict(old.state_dict())
    assert resumed.dataset.version == 0
    assert sorted(ids_of(head + list(resumed))) == list(range(300))
