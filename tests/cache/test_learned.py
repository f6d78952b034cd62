"""The learned policies leave their fallback, keep the contract while learning, and fall back when failing."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline_opt.cache.policies import make
from pipeline_opt.cache.policies.labels import Labeler

CAPACITY = 16 * 2**20


def _workload(n=30_000, seed=5):
    rng = np.random.default_rng(seed)
    hot = rng.zipf(1.1, n) % 3000
    scan = np.arange(n) + 100_000
    keys = np.where(rng.random(n) < 0.3, scan, hot)
    sizes = (keys % 15 + 1) * 4096
    return keys.tolist(), sizes.tolist()


def _replay(policy, keys, sizes):
    hits = 0
    for key, size in zip(keys, sizes):
        was_in = key in policy
        hit = policy.request(key, size)
        assert hit == was_in
        assert policy.used_bytes <= policy.capacity_bytes
        hits += hit
        for old in policy.pop_evicted():
            assert old not in policy or old == key
    return hits


@pytest.mark.parametrize("name", ["learned", "lrb", "rl", "mlp_admit", "lstm"])
def test_model_policies_train_online_and_keep_the_contract(name):
    keys, sizes = _workload(8_000 if name == "lstm" else 30_000)
    options = {"min_labels": 300, "slow_us": 1e9} if name != "mlp_admit" else {}
    policy = make(name, CAPACITY, **options)
    if name == "mlp_admit":
        policy.min_labels = 300
    hits = _replay(policy, keys, sizes)
    assert hits > 0
    assert policy.model_bytes > 0  # the model's memory is reserved out of the capacity
    if name == "learned":
        assert policy.trained and policy.enabled
    elif name == "mlp_admit":
        assert policy.labeler.labelled >= 300
    else:
        assert policy.mode == "model", f"{name} never left its S3-FIFO fallback"


def test_learned_falls_back_to_s3fifo_when_the_model_fails():
    keys, sizes = _workload()
    learned = make("learned", CAPACITY, min_labels=300, duel=False)
    _replay(learned, keys[:15_000], sizes[:15_000])
    assert learned.trained

    def broken(cell):
        raise FloatingPointError("model broke")

    learned.table.p = broken
    _replay(learned, keys[15_000:], sizes[15_000:])
    assert not learned.enabled  # from here on S3-FIFO's rules decide


def test_learned_falls_back_when_too_slow():
    keys, sizes = _workload()
    learned = make("learned", CAPACITY, min_labels=300, slow_us=0.0)
    _replay(learned, keys, sizes)
    assert not learned.enabled


def test_tiny_cache_runs_as_plain_s3fifo():
    keys, sizes = _workload(5000)
    learned, s3 = make("learned", 200_000), make("s3fifo", 200_000, entry_overhead=49)
    assert learned.model_bytes == 0
    a = [learned.request(k, s) for k, s in zip(keys, sizes)]
    b = [s3.request(k, s) for k, s in zip(keys, sizes)]
    assert a == b


def test_labels_come_once_from_later_requests():
    labeler = Labeler(max_pending=10)
    out = []
    labeler.add("a", now=0, horizon=10, payload="a@0")
    labeler.add("b", now=1, horizon=10, payload="b@1")
    labeler.add("c", now=2, horizon=3, payload="c@2")
    labeler.on_request("a", 5, out)  # within its horizon
    labeler.on_request("c", 9, out)  # after its deadline
    labeler.expire(12, out)  # b never came back
    labeler.on_request("a", 13, out)  # already labelled
    assert out == [("a@0", 5, True), ("c@2", 7, False), ("b@1", None, False)]
    assert not labeler.pending


def test_duel_follows_s3fifo_when_the_model_is_worse():
    keys, sizes = _workload()
    # threshold 0: the model shadow keeps every probation object it may, scans included
    learned = make("learned", CAPACITY, min_labels=300, thresholds=(0.0,), rescue_cap=0.5)
    s3 = make("s3fifo", CAPACITY)
    missed = [0, 0]
    for key, size in zip(keys, sizes):
        missed[0] += 0 if learned.request(key, size) else size
        missed[1] += 0 if s3.request(key, size) else size
    assert learned.trained and learned.leader == 0 and not learned.model_leads
    assert learned.shadow_missed[0] < learned.shadow_missed[1]
    assert missed[0] <= 1.03 * missed[1]
