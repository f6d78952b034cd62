"""Settings in the versioned store, and the gradual rollout of a candidate value, one setting at a time.

Layout: the ``ConfigStore`` under ``config_store`` holds one config per setting key (``{"value": text}``; the
active version is what jobs read) and, beside it, ``KEY/rollout.json``: the setting's latest rollout (candidate
version, stage, status, every decision).

Invariants: a candidate is checked (``controlled.check_value``) before anything is written; one running rollout per
setting (a second ``start`` is refused); a unit of work (a table, else the job) is on the candidate iff its stable
hash with the rollout's id is below the stage's percent, so it stays there as the stages rise; a stage is judged only
on points recorded under this rollout at this stage; a rollback leaves the active version (the previous one) in
place, logs why in the store, and the rollout stays rolled back until a new ``start``: a failed candidate is never
retried by itself.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping, Optional

from pipeline_opt.errors import PipelineOptError
from pipeline_opt.monitor.ab import Rollout, arm, compare
from pipeline_opt.monitor.controlled import check_value, setting
from pipeline_opt.monitor.metrics import MetricPoint
from pipeline_opt.monitor.rollback import Baseline, Watch
from pipeline_opt.monitor.settings import MonitorConfig
from pipeline_opt.monitor.versions import ConfigStore


class RolloutStateError(PipelineOptError):
    """A second rollout of one setting, or promote/abort with none running."""


@dataclass
class Step:
    at: float
    percent: float
    action: str  # "start", "wait", "advance", "promote", "rollback", "abort"
    reason: str
    n_baseline: int = 0
    n_candidate: int = 0
    ratio: Optional[float] = None
    bound: Optional[float] = None


@dataclass
class RolloutState:
    key: str
    id: str  # salt of the split and label of every point recorded under it
    baseline_version: int
    candidate_version: int
    status: str = "running"  # "running", "promoted", "rolled_back", "aborted"
    stage: int = 0
    steps: list[Step] = field(default_factory=list)

    def percent(self, config: MonitorConfig) -> float:
        if self.status == "promoted":
            return 100.0
        return float(config.rollout_steps[self.stage]) if self.status == "running" else 0.0


@dataclass(frozen=True)
class Resolved:
    """What one run of a job uses for one setting."""

    key: str
    value: Optional[str]  # None: the job's own default
    version: Optional[int]
    arm: str  # "candidate", "baseline", or "" when no rollout runs
    rollout: str = ""
    percent: float = 0.0


class Settings:
    """The versioned settings and their rollouts under ``root`` (``config_store`` of ``conf/monitor.yml``)."""

    def __init__(self, root, config: Optional[MonitorConfig] = None, clock: Callable[[], float] = time.time,
                 storage_options: Optional[Mapping[str, str]] = None):
        self.store = ConfigStore(root, clock, storage_options)
        self.config, self.clock = config or MonitorConfig(), clock

    # ------------------------------------------------------------------ values
    def value(self, key: str, version: Optional[int] = None) -> Optional[str]:
        setting(key)
        if version is None and self.store.head(key) is None:
            return None
        return self.store.get(key, version).config.get("value")

    def set(self, key: str, value: str, author: str, reason: str) -> int:
        """A new active version of ``key`` (checked first); returns its number."""
        text = check_value(key, value)
        state = self.rollout(key)
        if state is not None and state.status == "running":
            raise RolloutStateError(f"setting {key} is under rollout; promote or abort it first")
        return self.store.put(key, {"value": text}, note=_note(author, reason)).version

    def resolve(self, key: str, unit: str) -> Resolved:
        head = self.store.head(key)
        state = self.rollout(key)
        if state is None or state.status != "running":
            return Resolved(key, self.value(key), head, "")
        percent = state.percent(self.config)
        side = arm(unit, percent, salt=state.id)
        version = state.candidate_version if side == "candidate" else state.baseline_version
        return Resolved(key, self.value(key, version), version, side, state.id, percent)

    # ------------------------------------------------------------------ rollouts
    def rollout(self, key: str) -> Optional[RolloutState]:
        text = self.store.read(setting(key).key, "rollout.json")
        if text is None:
            return None
        data = json.loads(text)
        data["steps"] = [Step(**s) for s in data.get("steps", [])]
        return RolloutState(**data)

    def start(self, key: str, value: str, author: str, reason: str) -> RolloutState:
        text = check_value(key, value)  # refused before the store sees it
        state = self.rollout(key)
        if state is not None and state.status == "running":
            raise RolloutStateError(f"setting {key} already has rollout {state.id} running "
                                    f"(at {state.percent(self.config):g} %); promote or abort it first")
        if self.store.head(key) is None:  # the job's own default becomes version 1, the one to fall back to
            self.store.put(key, {"value": None}, note=_note(author, "the job's default, before the first rollout"))
        if self.value(key) == text:
            raise RolloutStateError(f"setting {key} is already {text}")
        baseline = self.store.head(key)
        assert baseline is not None  # put above when there was none
        candidate = self.store.put(key, {"value": text}, note=_note(author, reason), activate=False).version
        state = RolloutState(key, f"{key}-v{candidate}", baseline, candidate)
        state.steps.append(Step(self.clock(), state.percent(self.config), "start", _note(author, reason)))
        self._save(state)
        return state

    def promote(self, key: str, author: str, reason: str) -> RolloutState:
        state = self._running(key)
        self._promote(state, _note(author, reason))
        return state

    def abort(self, key: str, author: str, reason: str) -> RolloutState:
        state = self._running(key)
        state.status = "aborted"
        state.steps.append(Step(self.clock(), 0.0, "abort", _note(author, reason)))
        self._save(state)
        return state

    def step(self, key: str, points: list[MetricPoint]) -> Optional[Step]:
        """Judges the running rollout of ``key`` on the recorded ``points``: a trigger rolls it back; otherwise,
        once both arms hold enough points at this stage, it advances, is promoted or rolls back."""
        state = self.rollout(key)
        if state is None or state.status != "running":
            return None
        mine = _under(state, points)
        firing = self._trigger(key, state, points, mine)
        if firing is not None:
            return self._rollback(state, f"trigger {firing}")
        return self._judge(state, mine)

    def summary(self, key: str, points: list[MetricPoint]) -> dict:
        """Arms, sample sizes, effect with its bound, and what comes next (``rollout status``)."""
        state = self.rollout(key)
        out: dict = {"setting": key, "active_version": self.store.head(key), "active_value": self.value(key)}
        if state is None:
            return {**out, "rollout": None}
        out.update(rollout=state.id, status=state.status, percent=state.percent(self.config),
                   baseline={"version": state.baseline_version, "value": self.value(key, state.baseline_version)},
                   candidate={"version": state.candidate_version,
                              "value": self.value(key, state.candidate_version)},
                   steps=[asdict(s) for s in state.steps])
        if state.status == "running":
            values = self._arm_values(state, _under(state, points))
            out["samples"] = {side: len(v) for side, v in values.items()}
            metric = self._judged(state, points)
            if min(len(v) for v in values.values()) >= 2:
                cmp = compare(values["baseline"], values["candidate"], setting(key).higher_is_better(metric),
                              self.config.ab_margin, self.config.confidence, self.config.ab_resamples)
                out["effect"] = {"ratio": cmp.ratio, "bound": cmp.bound, "limit": cmp.limit,
                                 "not_worse": cmp.not_worse}
            out["next"] = (f"judged at {self.config.ab_min_units} points per arm on "
                           f"{self._judged(state, points)}; then "
                           + ("promote" if state.stage + 1 >= len(self.config.rollout_steps) - 1
                              else f"{self.config.rollout_steps[state.stage + 1]} %"))
        return out

    # ------------------------------------------------------------------ inside
    def _trigger(self, key: str, state: RolloutState, points: list[MetricPoint], mine: list[MetricPoint]
                 ) -> Optional[str]:
        """The first rollback trigger that fires on the candidate's points, against the baseline arm's values
        and the jobs' own points from before the rollout."""
        candidate = sorted((p for p in mine if p.labels.get("arm") == "candidate"), key=lambda p: p.ts)
        if not candidate:
            return None
        jobs = {p.job for p in candidate}
        started = state.steps[0].at if state.steps else 0.0
        before = [p for p in points if p.job in jobs and p.ts < started and "dry_run" not in p.labels]
        reference = [p for p in mine if p.labels.get("arm") == "baseline"] + before
        watch = Watch(Baseline.from_points(reference, note=f"baseline of {state.id}"), self.config)
        for p in candidate:
            fired = watch.observe(p)
            if fired:
                return fired[0].reason
        fired = watch.poll(self.clock())
        return fired[0].reason if fired else None

    def _judge(self, state: RolloutState, mine: list[MetricPoint]) -> Step:
        values = self._arm_values(state, mine)
        better = setting(state.key).higher_is_better(self._judged(state, mine))
        rollout = Rollout(state.id, better, self.config, stage=state.stage)
        decision = rollout.evaluate(values["baseline"], values["candidate"])
        cmp = decision.comparison
        step = Step(self.clock(), decision.percent, decision.action, decision.reason, len(values["baseline"]),
                    len(values["candidate"]), cmp.ratio if cmp else None, cmp.bound if cmp else None)
        if decision.action == "rollback":
            return self._rollback(state, decision.reason, step)
        if decision.action == "promote":
            return self._promote(state, decision.reason, step)
        if decision.action == "advance":
            state.stage = rollout.stage
        if decision.action != "wait" or not state.steps or state.steps[-1].action != "wait":
            state.steps.append(step)  # one "wait" per stretch of waiting, not one per run
        self._save(state)
        return step

    def _arm_values(self, state: RolloutState, mine: list[MetricPoint]) -> dict[str, list[float]]:
        metric = self._judged(state, mine)
        percent = f"{state.percent(self.config):g}"
        values: dict[str, list[float]] = {"baseline": [], "candidate": []}
        for p in mine:
            if p.name == metric and p.labels.get("stage") == percent and p.labels.get("arm") in values:
                values[p.labels["arm"]].append(p.value)
        return values

    def _judged(self, state: RolloutState, points: list[MetricPoint]) -> str:
        names = {p.name for p in points}
        judged_by = setting(state.key).judged_by
        return next((m for m in judged_by if m in names), judged_by[0])

    def _rollback(self, state: RolloutState, reason: str, step: Optional[Step] = None) -> Step:
        percent = state.percent(self.config)
        state.status = "rolled_back"
        step = step or Step(self.clock(), percent, "rollback", reason)
        step.action, step.reason = "rollback", f"rolled back to version {state.baseline_version}: {reason}"
        state.steps.append(step)
        self.store.activate(state.key, state.baseline_version, f"rollout {state.id}: {step.reason}")
        self._save(state)
        return step

    def _promote(self, state: RolloutState, reason: str, step: Optional[Step] = None) -> Step:
        step = step or Step(self.clock(), state.percent(self.config), "promote", reason)
        step.action = "promote"
        state.status = "promoted"
        state.steps.append(step)
        self.store.activate(state.key, state.candidate_version, f"rollout {state.id} promoted: {reason}")
        self._save(state)
        return step

    def _running(self, key: str) -> RolloutState:
        state = self.rollout(key)
        if state is None or state.status != "running":
            raise RolloutStateError(f"setting {key} has no running rollout"
                                    + (f" (the last, {state.id}, is {state.status})" if state else ""))
        return state

    def _save(self, state: RolloutState) -> None:
        self.store.write(state.key, "rollout.json", json.dumps(asdict(state), indent=1))


def _under(state: RolloutState, points: list[MetricPoint]) -> list[MetricPoint]:
    """The points recorded under ``state``'s rollout by runs that acted (a dry run is no evidence)."""
    return [p for p in points if p.labels.get(f"rollout.{state.key}") == state.id and "dry_run" not in p.labels]


def _note(author: str, reason: str) -> str:
    return f"{author or 'unknown'}: {reason or 'no reason given'}"
