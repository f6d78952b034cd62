"""Shuffle: seeded and deterministic, independent of worker count, measurably mixing."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline_opt.loader import DeltaDataset, DeltaLoader, shuffle_quality
from tests.loader.util import ids_of


def _batches(path, workers=0, **kw):
    return [tuple(b["id"].tolist()) for b in DeltaLoader(DeltaDataset(path, batch_size=50, **kw),
                                                          num_workers=workers)]


def test_same_seed_same_order_other_seed_other_order(dv_table):
    path, _ = dv_table
    a = _batches(path, shuffle=True, seed=1)
    assert a == _batches(path, shuffle=True, seed=1)
    assert a != _batches(path, shuffle=True, seed=2)


def test_batches_do_not_depend_on_worker_count(dv_table):
    path, _ = dv_table
    solo = _batches(path, shuffle=True, seed=5, shuffle_buffer=200)
    assert sorted(solo) == sorted(_batches(path, workers=2, shuffle=True, seed=5, shuffle_buffer=200))


def test_each_epoch_reshuffles(dv_table):
    path, expected = dv_table
    loader = DeltaLoader(DeltaDataset(path, batch_size=100, shuffle=True, seed=0))
    first, second = ids_of(list(loader)), ids_of(list(loader))
    assert first != second and sorted(first) == sorted(second) == sorted(expected)


def test_quality_measure_separates_shuffled_from_ordered(dv_table):
    path, _ = dv_table
    stored = ids_of(list(DeltaLoader(DeltaDataset(path, batch_size=100))))
    position = {v: i for i, v in enumerate(stored)}
    plain = shuffle_quality(np.array([position[i] for i in stored]))
    mixed = ids_of(list(DeltaLoader(DeltaDataset(path, batch_size=100, shuffle=True, shuffle_buffer=4000))))
    shuffled = shuffle_quality(np.array([position[i] for i in mixed]))
    assert plain["rank_correlation"] == pytest.approx(1.0) and plain["displacement"] == 0.0
    assert abs(shuffled["rank_correlation"]) < 0.1
    assert shuffled["relative_displacement"] > 0.7


def test_quality_of_a_uniform_permutation():
    q = shuffle_quality(np.random.default_rng(0).permutation(100_000))
    assert abs(q["rank_correlation"]) < 0.02 and abs(q["relative_displacement"] - 1) < 0.02
