"""Trace readers, the simulator, the offline bounds and ``pipeline-opt cache simulate``."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline_opt.app.cli import main
from pipeline_opt.cache.bounds import belady, lower_bound, pfoo_l
from pipeline_opt.cache.simulate import simulate
from pipeline_opt.cache.trace import ORACLE_DTYPE, Trace, TraceError, next_use, read_trace, write_csv


def _oracle_file(path, keys, sizes):
    rec = np.zeros(len(keys), dtype=ORACLE_DTYPE)
    rec["time"] = np.arange(len(keys))
    rec["id"], rec["size"] = keys, sizes
    nxt = next_use(np.asarray(keys, dtype=np.int64))
    rec["next"] = np.where(nxt == len(keys), -1, nxt)
    rec.tofile(path)
    return path


@pytest.fixture
def small_trace(tmp_path):
    rng = np.random.default_rng(1)
    keys = rng.zipf(1.3, 5000) % 400
    sizes = (keys % 7 + 1) * 1000
    return _oracle_file(tmp_path / "t.bin", keys, sizes)


def test_oracle_round_trip_and_csv(small_trace, tmp_path):
    t = read_trace(small_trace)
    assert len(t) == 5000 and t.sizes.dtype == np.int64
    c = read_trace(write_csv(t, tmp_path / "t.csv"), "csv")
    assert len(c) == 5000 and c.working_set_bytes == t.working_set_bytes
    assert np.array_equal(c.sizes, t.sizes)


def test_corrupt_oracle_names_the_record(small_trace, tmp_path):
    data = bytearray(small_trace.read_bytes())
    (tmp_path / "cut.bin").write_bytes(data[:-5])
    with pytest.raises(TraceError, match="record 4999"):
        read_trace(tmp_path / "cut.bin")
    rec = np.fromfile(small_trace, dtype=ORACLE_DTYPE)
    rec["size"][17] = 0
    rec.tofile(tmp_path / "zero.bin")
    with pytest.raises(TraceError, match="record 17 has size 0"):
        read_trace(tmp_path / "zero.bin")
    rec["size"][17] = 5
    rec["next"][3] = 2
    rec.tofile(tmp_path / "next.bin")
    with pytest.raises(TraceError, match="record 3 has next=2"):
        read_trace(tmp_path / "next.bin")


def test_corrupt_csv_names_the_line(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("time,key,size\n1,a,10\n2,b,ten\n")
    with pytest.raises(TraceError, match="line 3"):
        read_trace(p, "csv")
    p.write_text("when,key,size\n")
    with pytest.raises(TraceError, match="lacks column"):
        read_trace(p, "csv")
    with pytest.raises(TraceError, match="not found"):
        read_trace(tmp_path / "missing.bin")


def test_belady_is_exact_on_a_hand_example():
    # capacity 2: a b c a b → OPT misses a, b, c, then evicts c (never reused) → a, b hit
    t = Trace("x", np.zeros(5, np.uint64), np.array([1, 2, 3, 1, 2]), np.ones(5, np.int64))
    assert belady(t, 2) == pytest.approx(3 / 5)
    assert lower_bound(t, 2)["method"] == "belady"


def test_bounds_lie_below_every_policy(small_trace):
    t = read_trace(small_trace)
    report = simulate(t, ["lru", "arc", "s3fifo", "learned"], [0.05, 0.2])
    for b in report.bound:
        rows = [r for r in report.results if r.size_fraction == b.size_fraction]
        assert all(b.byte_miss_ratio <= r.byte_miss_ratio + 1e-9 for r in rows)
    big = simulate(t, ["lru"], [0.2], bound=False).results[0]
    small = simulate(t, ["lru"], [0.05], bound=False).results[0]
    assert big.byte_miss_ratio < small.byte_miss_ratio  # a bigger cache misses less
    assert pfoo_l(t, 10**12) == pytest.approx(t.working_set_bytes / t.sizes.sum())  # only cold misses left


def test_pfoo_object_bound_below_belady_for_unit_sizes():
    rng = np.random.default_rng(3)
    keys = rng.zipf(1.2, 4000) % 300
    t = Trace("u", np.zeros(4000, np.uint64), keys, np.ones(4000, np.int64))
    assert pfoo_l(t, 50, byte=False) <= belady(t, 50) + 1e-9


def test_cli_simulate_json_shape(small_trace, capsys):
    assert main(["cache", "simulate", "--trace", str(small_trace), "--policies", "lru,s3fifo",
                 "--sizes", "0.05,0.1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"trace", "requests", "working_set_bytes", "results", "bound"}
    assert len(out["results"]) == 4 and len(out["bound"]) == 2
    assert set(out["results"][0]) == {"policy", "size_fraction", "cache_bytes", "object_miss_ratio",
                                      "byte_miss_ratio", "us_per_request"}
    assert set(out["bound"][0]) == {"size_fraction", "byte_miss_ratio"}


def test_cli_user_errors_exit_2(small_trace, capsys):
    assert main(["cache", "simulate", "--trace", str(small_trace), "--policies", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["cache", "simulate", "--trace", str(small_trace), "--sizes", "1.5"]) == 2
