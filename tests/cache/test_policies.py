"""One contract test over every registered policy, plus hand-checked behaviour of the simple ones."""
from __future__ import annotations

import random

import pytest

from pipeline_opt.cache.policies import CachePolicyError, make, names


def _workload(n=6000, seed=7):
    """Skewed keys with varied sizes, a scan in the middle: exercises admission, eviction and ghosts."""
    rng = random.Random(seed)
    sizes = {}
    for i in range(n):
        if 2000 <= i < 2600:
            key = 10_000 + i  # one-time scan
        else:
            key = int(rng.paretovariate(0.8)) % 500
        size = sizes.setdefault(key, rng.choice([100, 512, 1000, 4096, 9000]))
        yield key, size


@pytest.mark.parametrize("name", names())
def test_contract(name):
    capacity = 60_000
    policy = make(name, capacity)
    cached = set()
    hits = 0
    for key, size in _workload():
        was_in = key in policy
        hit = policy.request(key, size)
        assert hit == was_in, f"{name}: request({key}) returned {hit} but key in policy was {was_in}"
        hits += hit
        assert 0 <= policy.used_bytes <= capacity, f"{name}: used {policy.used_bytes} > capacity {capacity}"
        evicted = policy.pop_evicted()
        for old in evicted:
            cached.discard(old)
        if key in policy:
            cached.add(key)
        assert all(k in policy for k in cached), f"{name}: a key was dropped without being reported evicted"
        assert policy.pop_evicted() == []
    assert hits > 0, f"{name} never hit on a skewed workload"
    assert len(cached) == len(policy)


@pytest.mark.parametrize("name", names())
def test_object_larger_than_cache_is_not_admitted(name):
    policy = make(name, 10_000)
    assert policy.request("big", 20_000) is False
    assert "big" not in policy and policy.used_bytes <= 10_000


def test_registry_lists_the_issue_policies():
    assert {"lru", "lfu", "arc", "s3fifo", "sieve", "gdsf", "learned"} <= set(names())


def test_unknown_name_and_bad_capacity_are_named():
    with pytest.raises(CachePolicyError, match="nope"):
        make("nope", 100)
    with pytest.raises(CachePolicyError, match="-5"):
        make("lru", -5)


def test_lru_evicts_least_recent():
    p = make("lru", 3 * 132)  # three 100-byte objects with 32 bytes of metadata each
    for k in "abc":
        p.request(k, 100)
    p.request("a", 100)
    p.request("d", 100)
    assert p.pop_evicted() == ["b"] and "a" in p and "d" in p


def test_s3fifo_scan_does_not_flush_main():
    p = make("s3fifo", 20 * 1033, entry_overhead=33)
    for _ in range(3):
        for k in range(10):
            p.request(k, 1000)
    for k in range(100, 400):  # a one-pass scan
        p.request(k, 1000)
    assert sum(k in p for k in range(10)) >= 8


def test_sieve_spares_visited_objects():
    p = make("sieve", 3 * 133)
    for k in "abc":
        p.request(k, 100)
    p.request("a", 100)
    p.request("d", 100)
    assert p.pop_evicted() == ["b"]


def test_metadata_counts_against_capacity():
    p = make("lru", 1000, entry_overhead=100)
    for k in range(10):
        p.request(k, 100)
    assert len(p) == 5 and p.used_bytes == 1000
