"""Automatic rollback: sustained regressions against a recorded baseline revert the optimization's config.

The triggers, as specified (ratios and durations come from ``conf/monitor.yml``):
- memory above 95 % of baseline for more than 5 minutes;
- cache hit rate below 80 % of baseline for more than 10 minutes;
- response time more than 50 % above baseline (above 150 % of it) for more than 3 minutes;
- any out-of-memory error, at once.

Invariants: "above"/"below" and "more than" are strict — a value exactly at the threshold is not a breach and a
breach lasting exactly the duration does not fire (values within 1e-9 relative of the threshold count as "at"); a
breach is a run of consecutive breaching observations of one metric, timed from its first observation, and any
observation back inside the threshold ends it, so a flapping metric whose runs each stay within the duration never
fires; a trigger fires at most once; time comes only from the observations' timestamps or the injected clock, so
a simulated clock drives every test.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from pipeline_opt.monitor.metrics import MetricPoint
from pipeline_opt.monitor.settings import MonitorConfig

_EPS = 1e-9
TRIGGER_KINDS = ("memory", "hit_rate", "latency", "oom")


class SimulatedClock:
    """A clock that moves only when told: ``clock()`` is now, ``clock.advance(seconds)`` moves it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class Baseline:
    """Reference value per metric stream (the median over the baseline run), kept as JSON next to the config.

    With ``by_label`` (e.g. ``"table"``) each value of that label is its own stream, keyed ``name[label=value]``,
    so a slow table is judged against its own past, not against the fast ones.
    """

    values: dict[str, float]
    note: str = ""
    by_label: Optional[str] = None

    @classmethod
    def from_points(cls, points: Iterable[MetricPoint], note: str = "", by_label: Optional[str] = None
                    ) -> "Baseline":
        by_key: dict[str, list[float]] = {}
        for p in points:
            if p.kind in ("gauge", "timer"):
                by_key.setdefault(series_key(p, by_label), []).append(p.value)
        return cls({k: float(np.median(v)) for k, v in sorted(by_key.items())}, note, by_label)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> "Baseline":
        return cls(**json.loads(Path(path).read_text()))


def series_key(point: MetricPoint, by_label: Optional[str]) -> str:
    if by_label and by_label in point.labels:
        return f"{point.name}[{by_label}={point.labels[by_label]}]"
    return point.name


@dataclass(frozen=True)
class Rule:
    kind: str  # one of TRIGGER_KINDS
    direction: str  # "above" or "below"
    ratio: float
    seconds: float

    def watches(self, metric: str) -> bool:
        prefix = {"memory": "memory.", "hit_rate": "cache.", "latency": "latency.", "oom": "event.oom"}[self.kind]
        return metric.startswith(prefix)

    def breaches(self, value: float, baseline: float) -> bool:
        threshold = self.ratio * baseline
        if self.direction == "above":
            return value > threshold + _EPS * abs(threshold)
        return value < threshold - _EPS * abs(threshold)


def rules(config: MonitorConfig) -> list[Rule]:
    return [Rule("memory", "above", config.memory_ratio, config.memory_minutes * 60),
            Rule("hit_rate", "below", config.hit_rate_ratio, config.hit_rate_minutes * 60),
            Rule("latency", "above", config.latency_ratio, config.latency_minutes * 60),
            Rule("oom", "above", 0.0, 0.0)]


@dataclass(frozen=True)
class Firing:
    """Why a trigger fired: the facts a person needs to judge the rollback."""

    trigger: str
    metric: str
    baseline: Optional[float]
    threshold: Optional[float]
    observed: float
    since: float
    at: float
    reason: str


@dataclass
class Trigger:
    """One rule watching one metric stream against its baseline value."""

    rule: Rule
    metric: str
    baseline: Optional[float]
    since: Optional[float] = None
    last: Optional[float] = None
    fired: Optional[Firing] = None

    def observe(self, value: float, at: float) -> Optional[Firing]:
        if self.fired:
            return None
        if self.rule.kind == "oom":
            return self._fire(value, at, at)
        assert self.baseline is not None, "only an oom trigger may lack a baseline"  # as Watch builds them
        if self.rule.breaches(value, self.baseline):
            self.since = at if self.since is None else self.since
            self.last = value
            return self.poll(at)
        self.since = self.last = None
        return None

    def poll(self, now: float) -> Optional[Firing]:
        """Fires when the running breach has lasted more than the rule's duration by ``now``."""
        if self.fired or self.since is None or now - self.since <= self.rule.seconds:
            return None
        assert self.last is not None  # set together with since, in observe
        return self._fire(self.last, self.since, now)

    def _fire(self, value: float, since: float, at: float) -> Firing:
        r = self.rule
        if r.kind == "oom":
            reason = f"{self.metric}: out-of-memory error observed"
            threshold = None
        else:
            assert self.baseline is not None, "only an oom trigger may lack a baseline"
            threshold = r.ratio * self.baseline
            reason = (f"{self.metric} {value:.4g} {r.direction} {r.ratio:.0%} of baseline {self.baseline:.4g} "
                      f"for {at - since:.0f} s (limit: more than {r.seconds:.0f} s)")
        self.fired = Firing(r.kind, self.metric, self.baseline, threshold, float(value), since, at, reason)
        return self.fired


@dataclass
class Watch:
    """All triggers of a config over a stream of points; creates one trigger per metric the baseline knows."""

    baseline: Baseline
    config: MonitorConfig = field(default_factory=MonitorConfig)
    triggers: dict[str, list[Trigger]] = field(default_factory=dict)

    def observe(self, point: MetricPoint) -> list[Firing]:
        triggers = self._triggers_for(point.name, series_key(point, self.baseline.by_label))
        return [f for t in triggers if (f := t.observe(point.value, point.ts))]

    def poll(self, now: float) -> list[Firing]:
        return [f for ts in self.triggers.values() for t in ts if (f := t.poll(now))]

    def _triggers_for(self, metric: str, key: str) -> list[Trigger]:
        """One trigger per rule for the stream ``key``, against its own baseline (else the metric's)."""
        if key not in self.triggers:
            base = self.baseline.values.get(key, self.baseline.values.get(metric))
            self.triggers[key] = [Trigger(r, key, base) for r in rules(self.config) if r.watches(metric)
                                  and (r.kind == "oom" or (base is not None and base > 0))]
        return self.triggers[key]


@dataclass(frozen=True)
class RollbackEvent:
    firing: Firing
    config_name: str
    from_version: Optional[int]
    to_version: Optional[int]


class RollbackGuard:
    """Listens to a recorder; on the first firing reverts ``config_name`` in the store and records why.

    Invariant: at most one revert per guard (the first firing wins; later ones are kept in ``firings`` only).
    """

    def __init__(self, store, config_name: str, baseline: Baseline, config: Optional[MonitorConfig] = None,
                 recorder=None, clock: Optional[Callable[[], float]] = None) -> None:
        self.store, self.config_name, self.recorder, self.clock = store, config_name, recorder, clock
        self.watch = Watch(baseline, config or MonitorConfig())
        self.firings: list[Firing] = []
        self.event: Optional[RollbackEvent] = None
        if recorder is not None:
            recorder.listeners.append(self.observe)

    def observe(self, point: MetricPoint) -> Optional[RollbackEvent]:
        if point.name == "event.rollback":
            return None
        return self._handle(self.watch.observe(point))

    def poll(self, now: Optional[float] = None) -> Optional[RollbackEvent]:
        now = now if now is not None else (self.clock or time.time)()
        return self._handle(self.watch.poll(now))

    def _handle(self, firings: list[Firing]) -> Optional[RollbackEvent]:
        self.firings.extend(firings)
        if not firings or self.event is not None:
            return None
        first = firings[0]
        activation = self.store.revert(self.config_name, f"rollback: {first.reason}")
        self.event = RollbackEvent(first, self.config_name, activation.previous, activation.version)
        if self.recorder is not None:
            self.recorder.record("event.rollback", 1, "event", "count", config=self.config_name,
                                 trigger=first.trigger, metric=first.metric, reason=first.reason)
        return self.event
