"""Rollback triggers at their boundaries, on a simulated clock, and the revert they cause."""
from __future__ import annotations

import pytest

from pipeline_opt.monitor.metrics import Recorder
from pipeline_opt.monitor.rollback import Baseline, RollbackGuard, SimulatedClock, Watch
from pipeline_opt.monitor.settings import MonitorConfig
from pipeline_opt.monitor.versions import ConfigStore

BASE = {"memory.host_rss_bytes": 1000.0, "cache.hit_rate": 0.5, "latency.query": 2.0}
# (metric, value exactly at the threshold, a value just past it, a value just inside it, duration in seconds)
CASES = {
    "memory": ("memory.host_rss_bytes", 950.0, 950.5, 949.5, 300),
    "hit_rate": ("cache.hit_rate", 0.4, 0.399, 0.401, 600),
    "latency": ("latency.query", 3.0, 3.001, 2.999, 180),
}


def feed(metric: str, values_and_gaps, start: float = 0.0):
    """Feeds (value, seconds until the next sample) pairs; returns the firings and the recorder's clock."""
    clock = SimulatedClock(start)
    watch = Watch(Baseline(dict(BASE)), MonitorConfig())
    rec = Recorder(clock=clock)
    fired = []
    rec.listeners.append(lambda p: fired.extend(watch.observe(p)))
    for value, gap in values_and_gaps:
        rec.record(metric, value, "timer" if metric.startswith("latency") else "gauge")
        clock.advance(gap)
    return fired, watch, clock


@pytest.mark.parametrize("kind", sorted(CASES))
def test_value_past_threshold_fires_only_after_more_than_the_duration(kind):
    metric, _, past, _, seconds = CASES[kind]
    # samples at 0 and exactly `seconds` later: a breach of exactly the duration does not fire
    fired, _, _ = feed(metric, [(past, seconds), (past, 0)])
    assert fired == []
    # one more sample just after the duration fires, once, naming the trigger and the metric
    fired, _, _ = feed(metric, [(past, seconds), (past, 0.5), (past, 0)])
    assert [f.trigger for f in fired] == [kind]
    assert fired[0].metric == metric and fired[0].at - fired[0].since == pytest.approx(seconds + 0.5)
    assert "baseline" in fired[0].reason


@pytest.mark.parametrize("kind", sorted(CASES))
def test_value_exactly_at_or_inside_threshold_never_fires(kind):
    metric, at, _, inside, seconds = CASES[kind]
    for value in (at, inside):
        fired, _, _ = feed(metric, [(value, 60)] * (seconds // 60 * 3))
        assert fired == [], value


@pytest.mark.parametrize("kind", sorted(CASES))
def test_flapping_metric_does_not_fire(kind):
    metric, _, past, inside, seconds = CASES[kind]
    # breaches each lasting just under the duration, separated by one recovered sample, for an hour
    run = [(past, seconds / 4)] * 3 + [(past, 1)]  # last breaching sample at 0.75·seconds
    pattern = (run + [(inside, 1)]) * 20
    fired, _, _ = feed(metric, pattern)
    assert fired == []
    # the same samples without the recovery fire
    fired, _, _ = feed(metric, [(past, seconds / 4)] * 6)
    assert [f.trigger for f in fired] == [kind]


def test_sustained_breach_fires_on_poll_without_new_samples():
    metric, _, past, _, seconds = CASES["latency"]
    _, watch, clock = feed(metric, [(past, 0)])
    assert watch.poll(clock() + seconds) == []
    assert [f.trigger for f in watch.poll(clock() + seconds + 0.001)] == ["latency"]


def test_any_oom_fires_at_once():
    clock = SimulatedClock()
    watch = Watch(Baseline({}), MonitorConfig())
    rec = Recorder(clock=clock)
    rec.listeners.append(lambda p: fired.extend(watch.observe(p)))
    fired: list = []
    with pytest.raises(MemoryError):
        with rec.timed("step"):
            raise MemoryError("host ran out")
    assert [f.trigger for f in fired] == ["oom"]
    assert fired[0].since == fired[0].at == clock()


def test_durations_and_ratios_come_from_config():
    config = MonitorConfig(latency_ratio=2.0, latency_minutes=1)
    watch = Watch(Baseline({"latency.step": 1.0}), config)
    from pipeline_opt.monitor.metrics import MetricPoint

    assert watch.observe(MetricPoint(0, "latency.step", "timer", 1.9)) == []
    assert watch.observe(MetricPoint(0, "latency.step", "timer", 2.5)) == []
    assert [f.trigger for f in watch.observe(MetricPoint(61, "latency.step", "timer", 2.5))] == ["latency"]


def test_metric_without_baseline_is_not_judged():
    watch = Watch(Baseline({}), MonitorConfig())
    from pipeline_opt.monitor.metrics import MetricPoint

    for t in range(0, 3600, 60):
        assert watch.observe(MetricPoint(t, "latency.query", "timer", 1e6)) == []


def test_guard_reverts_config_to_previous_version_and_records_why(tmp_path):
    clock = SimulatedClock()
    store = ConfigStore(tmp_path / "configs", clock=clock)
    store.put("cache", {"policy": "lru"}, note="baseline")
    store.put("cache", {"policy": "learned"}, note="candidate")
    rec = Recorder(clock=clock)
    baseline = Baseline.from_points([rec.gauge("cache.hit_rate", v) for v in (0.60, 0.62, 0.58)])
    guard = RollbackGuard(store, "cache", baseline, recorder=rec)
    for _ in range(12):  # hit rate 0.40 < 0.8 × 0.60 for 11 minutes
        rec.cache(hits=40, misses=60)
        clock.advance(60)
    assert guard.event is not None and guard.event.firing.trigger == "hit_rate"
    assert (guard.event.from_version, guard.event.to_version) == (2, 1)
    assert store.get("cache").config == {"policy": "lru"}
    last = store.log("cache")[-1]
    assert last.action == "revert" and "cache.hit_rate" in last.reason and "baseline 0.6" in last.reason
    assert sum(p.name == "event.rollback" for p in rec._buffer) == 1  # one revert, however long the breach lasts


def test_streams_split_by_label_are_judged_against_their_own_baseline(tmp_path):
    from pipeline_opt.monitor.metrics import MetricPoint

    points = [MetricPoint(0, "latency.query", "timer", v, labels={"table": t})
              for t, v in (("small", 0.1), ("small", 0.1), ("big", 10.0), ("big", 10.0))]
    baseline = Baseline.from_points(points, by_label="table")
    assert baseline.values == {"latency.query[table=big]": 10.0, "latency.query[table=small]": 0.1}
    baseline.save(tmp_path / "baseline.json")
    watch = Watch(Baseline.load(tmp_path / "baseline.json"), MonitorConfig())
    fired = []
    for t in range(0, 300, 30):  # big at its baseline, small at 3× its own: only small fires
        fired += watch.observe(MetricPoint(t, "latency.query", "timer", 10.0, labels={"table": "big"}))
        fired += watch.observe(MetricPoint(t, "latency.query", "timer", 0.3, labels={"table": "small"}))
    assert [f.metric for f in fired] == ["latency.query[table=small]"]


def test_a_revert_that_cannot_happen_is_reported_not_raised_into_the_job(tmp_path):
    clock = SimulatedClock()
    store = ConfigStore(tmp_path)
    store.put("cache", {"policy": "lru"})  # no previous version to revert to
    rec = Recorder(clock=clock)
    RollbackGuard(store, "cache", Baseline({}), recorder=rec)
    rec.oom(op="step")  # fires; the revert fails inside the listener
    assert any("no previous version" in e for e in rec.sink_errors)
    assert store.head("cache") == 1
