"""A/B split and gradual rollout of a candidate configuration: 10 → 25 → 50 → 100 %.

Invariants: a unit of work (a table, a query, a request key) goes to the candidate iff its stable hash bucket
(blake2b of salt and key, in [0, 100)) is below the stage's percent — the same on every machine and run, and a
unit on the candidate at one stage stays on it at every later stage; a stage advances only when the candidate is
not worse with the configured confidence (one-sided bootstrap bound on the ratio of per-unit means, against a
relative margin) and is rolled back otherwise, once both arms hold enough units; the bootstrap is seeded, so a
decision is reproducible from its inputs.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterable, Optional, Sequence

import numpy as np

from pipeline_opt.errors import PipelineOptError
from pipeline_opt.monitor.settings import MonitorConfig


class RolloutError(PipelineOptError):
    """A rollout used after it finished, or given unusable samples."""


def bucket(unit: Hashable, salt: str = "") -> float:
    """Stable position of ``unit`` in [0, 100)."""
    digest = hashlib.blake2b(f"{salt}\x00{unit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100


def arm(unit: Hashable, percent: float, salt: str = "") -> str:
    """``"candidate"`` or ``"baseline"`` for ``unit`` when ``percent`` % of the work goes to the candidate."""
    return "candidate" if bucket(unit, salt) < percent else "baseline"


@dataclass(frozen=True)
class Comparison:
    baseline_mean: float
    candidate_mean: float
    ratio: float  # candidate mean / baseline mean
    bound: float  # one-sided confidence bound on the ratio, on the "worse" side
    limit: float  # the bound must not pass this for "not worse" (1 ± margin)
    n_baseline: int
    n_candidate: int
    not_worse: bool


def compare(baseline: Sequence[float], candidate: Sequence[float], higher_is_better: bool = False,
            margin: float = 0.05, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> Comparison:
    """Non-inferiority of the candidate on per-unit values, by bootstrap of the ratio of means."""
    b, c = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    if len(b) < 2 or len(c) < 2 or not (np.isfinite(b).all() and np.isfinite(c).all()):
        raise RolloutError(f"need at least 2 finite values per arm, got {len(b)} baseline and {len(c)} candidate")
    rng = np.random.default_rng(seed)
    b_means = b[rng.integers(0, len(b), (resamples, len(b)))].mean(axis=1)
    c_means = c[rng.integers(0, len(c), (resamples, len(c)))].mean(axis=1)
    ratios = c_means / np.maximum(b_means, 1e-300)
    ratio = c.mean() / max(b.mean(), 1e-300)
    if higher_is_better:
        bound, limit = float(np.quantile(ratios, 1 - confidence)), 1 - margin
        ok = bound >= limit
    else:
        bound, limit = float(np.quantile(ratios, confidence)), 1 + margin
        ok = bound <= limit
    return Comparison(float(b.mean()), float(c.mean()), float(ratio), bound, limit, len(b), len(c), bool(ok))


@dataclass(frozen=True)
class Decision:
    percent: float  # the stage judged
    action: str  # "wait", "advance", "promote" (last stage passed) or "rollback"
    comparison: Optional[Comparison]
    reason: str


@dataclass
class Rollout:
    """The stages of one candidate; ``evaluate`` judges the current stage and moves on or rolls back."""

    name: str
    higher_is_better: bool = False
    config: MonitorConfig = field(default_factory=MonitorConfig)
    stage: int = 0
    status: str = "running"  # "running", "promoted" or "rolled_back"
    decisions: list[Decision] = field(default_factory=list)

    @property
    def percent(self) -> float:
        """Share of work on the candidate now: the stage's percent, 100 once promoted, 0 once rolled back."""
        return {"promoted": 100.0, "rolled_back": 0.0}.get(self.status, float(self.config.rollout_steps[self.stage]))

    def arm(self, unit: Hashable) -> str:
        return arm(unit, self.percent, salt=self.name)

    def split(self, units: Iterable[Hashable]) -> dict[str, list]:
        out: dict[str, list] = {"baseline": [], "candidate": []}
        for unit in units:
            out[self.arm(unit)].append(unit)
        return out

    def evaluate(self, baseline: Sequence[float], candidate: Sequence[float]) -> Decision:
        if self.status != "running":
            raise RolloutError(f"rollout {self.name!r} is already {self.status}")
        cfg, percent = self.config, self.percent
        if min(len(baseline), len(candidate)) < cfg.ab_min_units:
            return self._decide(Decision(percent, "wait", None, f"{len(baseline)} baseline and {len(candidate)} "
                                         f"candidate units; need {cfg.ab_min_units} per arm"))
        cmp = compare(baseline, candidate, self.higher_is_better, cfg.ab_margin, cfg.confidence,
                      cfg.ab_resamples, seed=self.stage)
        side = "lower" if self.higher_is_better else "upper"
        facts = (f"candidate/baseline {cmp.ratio:.3f}, {cfg.confidence:.0%} {side} bound {cmp.bound:.3f} "
                 f"vs limit {cmp.limit:.3f}")
        if not cmp.not_worse:
            self.status = "rolled_back"
            return self._decide(Decision(percent, "rollback", cmp, f"not shown to be not worse: {facts}"))
        if self.stage + 1 >= len(cfg.rollout_steps) - 1:
            self.status = "promoted"
            return self._decide(Decision(percent, "promote", cmp, f"not worse: {facts}; candidate takes 100 %"))
        self.stage += 1
        return self._decide(Decision(percent, "advance", cmp, f"not worse: {facts}; next stage "
                                     f"{cfg.rollout_steps[self.stage]} %"))

    def run_stage(self, units: Iterable[Hashable], measure: Callable[[Hashable, str], float]) -> Decision:
        """Splits ``units`` at the current stage, measures each with its arm (``measure(unit, arm)``), evaluates."""
        values: dict[str, list[float]] = {"baseline": [], "candidate": []}
        for side, members in self.split(units).items():
            values[side] = [float(measure(unit, side)) for unit in members]
        return self.evaluate(values["baseline"], values["candidate"])

    def _decide(self, decision: Decision) -> Decision:
        self.decisions.append(decision)
        return decision


def run_rollout(rollout: Rollout, stages: Callable[[int], Iterable[Hashable]],
                measure: Callable[[Hashable, str], float], max_rounds: int = 20) -> Rollout:
    """Drives a rollout to promotion or rollback; ``stages(round)`` gives each round's units of work."""
    for round_no in range(max_rounds):
        if rollout.status != "running":
            break
        rollout.run_stage(stages(round_no), measure)
    return rollout


def apply_outcome(rollout: Rollout, store, config_name: str, candidate_version: int) -> Optional[object]:
    """Promoted: the candidate version becomes active. Rolled back: the active version stays, and why is logged."""
    last = rollout.decisions[-1] if rollout.decisions else None
    if rollout.status == "promoted":
        assert last is not None, "a promoted rollout holds the decision that promoted it"
        return store.activate(config_name, candidate_version, f"rollout {rollout.name}: {last.reason}")
    if rollout.status == "rolled_back":
        assert last is not None, "a rolled-back rollout holds the decision that rolled it back"
        head = store.head(config_name)
        return store.activate(config_name, head, f"rollout {rollout.name} rolled back at {last.percent:g} %: "
                                                 f"{last.reason}")
    return None
