"""What every job run does around its work when monitoring is on (``monitoring.monitor_config``): read its settings
from the versioned store, record what it did into the metrics table (the points: ``run_points``), time a read of
what it committed, and move the rollouts of its settings on.

Invariants: a job's own parameters are checked before anything here runs; a parameter given explicitly always wins
over the store; a metrics location that is not a metrics table is refused (one ``PipelineOptError``) before the job
starts; after that, nothing here fails the job — a failing metrics table, store or probe costs its points and is
reported once, as one progress line; every point carries table, job, run id, setting versions and arm (in a run
over several tables, its table's own arm: ``arms.for_table``); a run's points reach the table in one commit (one
more when the run moves a rollout on).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Mapping

from pipeline_opt.app import monitoring
from pipeline_opt.app.arms import attach, name_of, unit_of
from pipeline_opt.app.run_points import record_facts, record_failure, record_probes
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.monitor import controlled
from pipeline_opt.monitor.metrics import Recorder
from pipeline_opt.monitor.settings import MonitorConfig

if TYPE_CHECKING:  # numpy and pyarrow load only once a run records, not for every command's start
    from pipeline_opt.monitor.rollouts import Resolved, Settings
    from pipeline_opt.monitor.store import DeltaSink

RECORDED_PARTS = ("tables", "maintenance", "loader", "training", "cache")  # app.jobs modules whose jobs record
PROBED_JOBS = ("compact", "partitioning")  # jobs judged by the read latency of the tables they commit to


def recorded(job: str, module: str) -> bool:
    return module.rsplit(".", 1)[-1] in RECORDED_PARTS


@dataclass
class Recording:
    """One job run's monitoring."""

    job: str
    config: MonitorConfig
    unit: str  # what the A/B split hashes: the table's name, else the log or config the job runs on, else the run
    table: str  # the table the run acts on, where it names one
    recorder: Recorder
    sink: DeltaSink
    settings: Settings
    resolved: list[Resolved] = field(default_factory=list)
    given: list[str] = field(default_factory=list)  # settings the caller gave explicitly for this run
    dry_run: bool = False  # a plan only: recorded, but never evidence for or against a candidate
    problems: list[str] = field(default_factory=list)
    # a run over several tables: table name → (what it resolved, its arguments), filled as the job asks
    per_table: dict[str, tuple[list[Resolved], Any]] = field(default_factory=dict)

    @classmethod
    def open(cls, job: str, given: Mapping[str, Any], config: MonitorConfig) -> "Recording":
        from pipeline_opt.monitor.rollouts import Settings
        from pipeline_opt.monitor.store import DeltaSink, check_metrics_location

        options, clock = monitoring.location_options(config.metrics_table), monitoring.CLOCK
        # someone else's table is refused before the job runs
        sink = DeltaSink(config.metrics_table, options, table=check_metrics_location(config.metrics_table, options))
        recorder = Recorder(job=job, sinks=[sink], clock=clock, flush_every=10**6)  # one commit, at the end
        acts_on = given.get("path") or (given["table"] if isinstance(given.get("table"), str) else "")
        settings = Settings(
            config.config_store, config, clock, storage_options=monitoring.location_options(config.config_store)
        )
        return cls(
            job,
            config,
            unit_of(given) or f"run-{recorder.run_id}",
            name_of(str(acts_on)) if acts_on else "",
            recorder,
            sink,
            settings,
            dry_run=str(given.get("dry_run", "")).lower() in ("true", "1", "yes"),
        )

    def fill(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters the store sets for this run (those under rollout control that were not given)."""
        self.resolved, self.given, filled = self._resolve(given, self.unit)
        return filled

    def _resolve(self, given: Mapping[str, Any], unit: str) -> tuple[list[Resolved], list[str], dict[str, Any]]:
        resolved, explicit, filled = [], [], {}
        for spec in controlled.for_job(self.job):
            param = spec.params[self.job]
            if given.get(param) not in (None, "", []):
                explicit.append(spec.key)
                continue
            try:
                r = self.settings.resolve(spec.key, unit)
            except Exception as e:  # an unreadable store costs the setting, never the run: the job's default holds
                self._problem(f"setting {spec.key}", e)
                continue
            resolved.append(r)
            if r.value is not None:
                filled[param] = r.value
        return resolved, explicit, filled

    def attach(self, args: Any, given: Mapping[str, Any], parse: Callable[[Mapping[str, Any]], Any]) -> Any:
        """``args`` that answer ``for_table``: each other table resolves its own arm and is parsed with its values."""

        def table_args(name: str) -> Any:
            if name == self.unit or not self.resolved:
                return args
            if name not in self.per_table:
                resolved, _, filled = self._resolve(given, name)
                try:
                    own = parse({**given, **filled})
                except Exception as e:  # a stored value this job refuses: that table runs on the run's arguments
                    self._problem(f"settings of table {name}", e)
                    resolved, own = [], args
                self.per_table[name] = (resolved, own)
            return self.per_table[name][1]

        return attach(args, table_args)

    def labels(self, table: str = "") -> dict[str, str]:
        """A table's labels (its own arm in a run over several tables), else the run's; in a run whose tables each
        took their own arm, the run's own points (wall time, memory) belong to no arm."""
        if table in self.per_table:
            resolved = self.per_table[table][0]
        elif self.per_table:
            resolved = []
        else:
            resolved = self.resolved
        out = {
            "arm": "candidate"
            if any(r.arm == "candidate" for r in resolved)
            else ("baseline" if any(r.arm for r in resolved) else ""),
            "version": ",".join(
                sorted(
                    [f"{r.key}@v{r.version}" if r.version is not None else f"{r.key}@default" for r in resolved]
                    + [f"{key}@given" for key in self.given]
                )
            ),
        }
        for r in resolved:
            if r.rollout:
                out.update({f"rollout.{r.key}": r.rollout, "stage": f"{r.percent:g}"})
        if self.dry_run:
            out["dry_run"] = "true"
        return out

    def run(self, work: Callable[[], Any], ctx) -> Any:
        started = time.perf_counter()
        try:
            result = work()
        except BaseException as e:
            seconds = time.perf_counter() - started
            self._safely("failure", partial(record_failure, self.recorder, e, seconds, self.table, self.labels))
            self._finish(ctx)
            raise
        seconds = time.perf_counter() - started
        self._safely("facts", partial(record_facts, self.recorder, result, seconds, self.table, self.labels))
        if self.job in PROBED_JOBS and self.config.probe and ctx.has_spark:
            queries = self.config.probe_queries
            self._safely("probe", partial(record_probes, self.recorder, ctx.spark, result, queries, self.labels))
        self._finish(ctx)
        return result

    # ------------------------------------------------------------------ after the run
    def _finish(self, ctx) -> None:
        """Writes the points, moves the rollouts on, and reports the first problem once."""
        self.recorder.flush()
        if self.recorder.sink_errors:
            self.problems.append(f"metrics table {self.config.metrics_table}: {self.recorder.sink_errors[0]}")
            self.recorder.sink_errors.clear()
        else:
            self._safely("rollout", self._step_rollouts)
        if self.problems:
            ctx.progress(
                f"monitoring: {self.problems[0]}"
                + (f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else "")
                + "; the job's own result stands"
            )
        self.problems.clear()

    def _step_rollouts(self) -> None:
        every = self.resolved + [r for resolved, _ in self.per_table.values() for r in resolved]
        running = list({r.key: r for r in every if r.rollout}.values())
        if not running:
            return
        points = self.sink.points()
        for r in running:
            step = self.settings.step(r.key, points)
            if step is not None and step.action in ("advance", "promote", "rollback"):
                self.recorder.record(
                    f"event.{'rollback' if step.action == 'rollback' else 'rollout'}",
                    1,
                    "event",
                    "count",
                    setting=r.key,
                    rollout=r.rollout,
                    action=step.action,
                    percent=f"{step.percent:g}",
                    reason=step.reason,
                )
        self.recorder.flush()

    def _safely(self, what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as e:  # monitoring must never take the job's work down
            self._problem(what, e)

    def _problem(self, what: str, error: Exception) -> None:
        self.problems.append(f"{what}: {type(error).__name__}: {error}")


def run_recorded(
    job: str,
    module: str,
    given: Mapping[str, Any],
    ctx,
    parse: Callable[[Mapping[str, Any]], Any],
    work: Callable[[Any], Any],
) -> Any:
    """``work(parse(given))``, monitored when monitoring is on; the store fills the settings not given."""
    args = parse(given)  # the caller's input is checked before anything is read or written
    config = monitoring.monitor_config(given.get("base_dir") or None) if recorded(job, module) else None
    if config is None:
        return work(args)
    try:
        recording = Recording.open(job, given, config)
    except PipelineOptError:
        raise  # a metrics location that is someone else's: refused before the job runs
    except Exception as e:  # an unreadable metrics table costs the recording, never the job
        ctx.progress(
            f"monitoring: metrics table {config.metrics_table}: {type(e).__name__}: {e}; the job runs unrecorded"
        )
        return work(args)
    filled = recording.fill(given)
    if filled:
        try:
            args = parse({**given, **filled})
        except Exception as e:  # a stored value this job version refuses: run on the job's own defaults
            recording.resolved.clear()
            recording._problem("settings", e)
    args = recording.attach(args, given, parse)
    return recording.run(lambda: work(args), ctx)
