"""Policy state as JSON: every shareable policy round-trips exactly; crafted state never runs code."""
from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from pipeline_opt.cache import policies
from pipeline_opt.cache.state import StateError, decode, encode


def _work(n=6000, seed=1):
    rng = random.Random(seed)
    return [(int(rng.paretovariate(0.8)) % 800, rng.choice([100, 512, 1000, 4096])) for _ in range(n)]


@pytest.mark.parametrize("name", [n for n in policies.names() if n != "lstm"])
def test_round_trip_continues_identically(name):
    work = _work()
    original, twin = policies.make(name, 200_000), policies.make(name, 200_000)
    if name == "planned":
        for p in (original, twin):
            p.announce("loader", [k for k, _ in work[2000:4000]])
    for key, size in work[:3000]:
        original.request(key, size)
        twin.request(key, size)
    copy = decode(json.loads(json.dumps(encode(original))), name, 200_000)
    assert [copy.request(k, s) for k, s in work[3000:]] == [twin.request(k, s) for k, s in work[3000:]]
    assert copy.used_bytes == twin.used_bytes


def test_a_policy_holding_torch_is_not_shareable():
    pytest.importorskip("torch")
    with pytest.raises(StateError, match="cannot persist"):
        encode(policies.make("lstm", 100_000))


@pytest.mark.parametrize("crafted", [
    {"$o": 0, "cls": "os:system", "v": {}},
    {"$o": 0, "cls": "subprocess:Popen", "v": {"args": "touch /tmp/x"}},
    {"$o": 0, "cls": "pipeline_opt.cache.state:StateError", "v": {}},  # an Exception: not object.__new__
    {"$o": 0, "cls": "pipeline_opt.cache.policies.lru:LRU.__init__", "v": {}},
    {"$o": 0, "cls": "builtins:eval", "v": {}},
    {"$a": 0, "dtype": "object", "shape": [1], "v": ["__import__('os')"]},
    {"$ref": 7},
    ["a", "bare", "list"],
])
def test_crafted_state_is_refused(crafted):
    with pytest.raises(StateError):
        decode(crafted, "lru", 1000)


def test_a_pickle_payload_does_not_run(tmp_path):
    marker = tmp_path / "ran"
    payload = f"cos\nsystem\n(S'touch {marker}'\ntR."  # the classic pickle exploit, as text
    with pytest.raises(StateError):
        decode({"$o": 0, "cls": payload, "v": {}}, "lru", 1000)
    with pytest.raises((StateError, ValueError)):
        decode(json.loads(json.dumps(payload)), "lru", 1000)
    assert not marker.exists()


def test_state_of_the_wrong_policy_or_capacity_is_refused():
    lru = policies.make("lru", 1000)
    lru.request("a", 100)
    data = encode(lru)
    with pytest.raises(StateError, match="not the s3fifo policy"):
        decode(data, "s3fifo", 1000)
    with pytest.raises(StateError, match="capacity"):
        decode(data, "lru", 2000)
    data["v"]["used_bytes"] = 5000
    with pytest.raises(StateError, match="uses 5000 bytes"):
        decode(data, "lru", 1000)


def test_shared_references_survive():
    fifo = policies.make("lfu", 10_000)
    for k in range(30):
        fifo.request(k % 11, 300)
    copy = decode(encode(fifo), "lfu", 10_000)
    assert all(copy.prio[k] in copy.heap for k in copy.prio)
    assert any(copy.prio[k] is entry for k in copy.prio for entry in copy.heap)


def test_decoding_imports_nothing_outside_the_cache_package():
    code = ("import sys, json; from pipeline_opt.cache.state import decode, StateError\n"
            "try: decode({'$o': 0, 'cls': 'pipeline_opt.cache_evil:X', 'v': {}}, 'lru', 10)\n"
            "except StateError: pass\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('pipeline_opt.cache_'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []
