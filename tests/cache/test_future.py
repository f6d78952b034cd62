"""The known future: matching requests to announced positions, paces, several sources, memory accounting."""
from __future__ import annotations

from pipeline_opt.cache.future import INF, POSITION_BYTES, SOURCE_BYTES, KnownFuture


def test_next_use_follows_the_announced_order():
    f = KnownFuture()
    f.announce("loader", ["a", "b", "c", "a"])
    assert f.next_use("a") == 0 and f.next_use("c") == 2 and f.next_use("zzz") == INF
    assert f.on_request("a") and f.now_next == 3  # the second "a" is three positions after the first
    assert f.on_request("b") and f.now_next == INF
    assert f.summary()["matched"] == 2 and f.summary()["pending"] == 2


def test_unannounced_requests_move_no_cursor():
    f = KnownFuture()
    f.announce("loader", ["a", "b"])
    assert not f.on_request("x")
    assert f.sources["loader"].cursor == 0 and f.summary()["unannounced"] == 1
    assert f.on_request("a") and f.sources["loader"].cursor == 1


def test_a_far_ahead_request_is_not_the_sources():
    f = KnownFuture()
    keys = [f"k{i}" for i in range(1000)]
    f.announce("loader", keys)
    assert not f.on_request("k900")  # 900 positions ahead of the cursor: somebody else read it
    assert f.next_use("k900") < INF  # still expected from the loader later


def test_pace_converts_positions_to_ticks():
    f = KnownFuture()
    f.announce("slow", [f"s{i}" for i in range(1000)])
    f.announce("fast", [f"f{i}" for i in range(3000)])
    done = {"s": 0, "f": 0}
    for i in range(2400):  # "fast" makes three of every four requests
        kind = "s" if i % 4 == 3 else "f"
        assert f.on_request(f"{kind}{done[kind]}")
        done[kind] += 1
    slow, fast = f.sources["slow"], f.sources["fast"]
    assert 0.15 < slow.rate < 0.4 and 0.6 < fast.rate < 0.9
    # 50 positions ahead in the slow source is further away in ticks than 50 ahead in the fast one
    assert f.next_use(f"s{slow.cursor + 50}") - f.clock > f.next_use(f"f{fast.cursor + 50}") - f.clock


def test_start_after_delays_a_scheduled_scan():
    f = KnownFuture()
    f.announce("nightly", ["x", "y"], start_after=1000, rate=1.0)
    assert f.next_use("x") == 1000 and f.next_use("y") == 1001


def test_replace_and_withdraw_free_their_positions():
    f = KnownFuture()
    f.announce("a", ["k1", "k2", "k3"])
    f.announce("b", ["k2"])
    assert f.bytes == 4 * POSITION_BYTES + 2 * SOURCE_BYTES
    f.announce("a", ["k9"])  # replaces a's plan
    assert f.next_use("k1") == INF and f.next_use("k9") < INF and f.next_use("k2") < INF
    f.withdraw("b")
    assert f.next_use("k2") == INF and not f.on_request("k2")
    assert f.bytes == POSITION_BYTES + SOURCE_BYTES and f.positions == 1  # only a's "k9" is left
    f.announce("big", [f"x{i}" for i in range(5000)])
    f.withdraw("big")
    assert f.positions == 1 and not any(k.startswith("x") for k in f.where)
    version = f.version
    f.withdraw("nobody")
    assert f.version == version


def test_two_sources_announcing_one_key_credit_the_nearer():
    f = KnownFuture()
    f.announce("a", ["x", "p", "q"])
    f.announce("b", ["m", "n", "o", "x"])
    assert f.on_request("x")
    assert f.sources["a"].cursor == 1 and f.sources["b"].cursor == 0
    assert f.next_use("x") < INF  # b's position of x is still to come


def test_a_loader_re_announcing_at_an_epoch_start_keeps_its_cursor_and_pace():
    f = KnownFuture()
    epoch = [[f"e{e}k{i}" for i in range(40)] for e in range(3)]
    f.announce("loader", epoch[0] + epoch[1])
    for key in epoch[0]:
        assert f.on_request(key)
    s = f.sources["loader"]
    f.announce("loader", epoch[1] + epoch[2])  # the pending part, then the next epoch: appended, not rebuilt
    assert f.sources["loader"] is s and s.cursor == 40 and f.positions == 80
    assert f.next_use("e2k0") == s.expected(80) and f.next_use("e0k0") == INF
    f.announce("loader", epoch[2])  # not a continuation: replaced
    assert f.sources["loader"] is not s and f.positions == 40 and f.next_use("e1k5") == INF
