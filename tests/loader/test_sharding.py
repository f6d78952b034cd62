"""Sharding: ranks × workers read every live row exactly once, and every rank yields the same batch count."""
from __future__ import annotations

from collections import Counter

import pytest

from pipeline_opt.loader import DeltaDataset, DeltaLoader
from pipeline_opt.loader.plan import plan_rank
from tests.loader.util import ids_of


@pytest.mark.parametrize("world_size,num_workers,drop_last", [(3, 2, False), (2, 2, True), (4, 0, False)])
def test_ranks_times_workers_exactly_once(dv_table, world_size, num_workers, drop_last):
    path, expected = dv_table
    per_rank, counts, facts = [], [], None
    for rank in range(world_size):
        ds = DeltaDataset(path, batch_size=64, shuffle=True, seed=7, rank=rank, world_size=world_size,
                          drop_last=drop_last, shuffle_buffer=256)
        batches = list(DeltaLoader(ds, num_workers=num_workers))
        counts.append(len(batches))
        assert len(batches) == len(ds)
        per_rank.append(ids_of(batches))
        facts = ds.facts()
    assert len(set(counts)) == 1  # uneven shards would hang a collective
    seen = Counter(i for ids in per_rank for i in ids)
    assert set(seen) <= expected
    if drop_last:
        assert all(n == 1 for n in seen.values())
        assert len(seen) == len(expected) - facts["dropped_rows"]
        assert facts["dropped_rows"] < world_size * 64
    else:
        assert set(seen) == expected
        assert sum(seen.values()) - len(expected) == facts["padded_rows"] < world_size


def test_workers_do_not_duplicate(dv_table):
    path, expected = dv_table
    ids = ids_of(list(DeltaLoader(DeltaDataset(path, batch_size=32, shuffle_buffer=128), num_workers=2)))
    assert sorted(ids) == sorted(expected)


def test_plan_balances_ranks_without_rows():
    plans = [plan_rank([10, 0, 7, 5], batch_size=4, window_rows=8, rank=r, world_size=3, drop_last=False,
                       shuffle=True, seed=1, epoch=0) for r in range(3)]
    assert {p.batches for p in plans} == {2}
    assert {p.rows for p in plans} == {8}
    assert plans[0].padded_rows == 2
    covered = Counter((f, i) for p in plans for w in p.windows for f, a, b in w.segments for i in range(a, b))
    assert set(covered) == {(f, i) for f, n in enumerate([10, 0, 7, 5]) for i in range(n)}


def test_empty_rank_plan():
    p = plan_rank([0, 0], batch_size=4, window_rows=8, rank=0, world_size=2, drop_last=False, shuffle=False,
                  seed=0, epoch=0)
    assert p.batches == 0 and p.windows == ()
