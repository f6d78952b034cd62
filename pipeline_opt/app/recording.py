"""What every job run does around its work: read its settings from the versioned store, record what it did into the
metrics table, time a read of what it committed, and move the rollouts of its settings on.

Monitoring is on when ``conf/monitor.yml`` (or the file ``$PIPELINE_OPT_MONITOR`` names; ``off`` turns it off) sets
``record: true`` and its ``metrics_table`` lies in an existing lakehouse (a local metrics table's parent folder must
exist; an object-store URI always counts), so a checkout without a lakehouse records nothing.

Invariants: a job's own parameters are checked before anything here runs; a parameter given explicitly always wins
over the store; a metrics location that is not a metrics table is refused (one ``PipelineOptError``) before the job
starts; after that, nothing here fails the job — a failing metrics table, store or probe costs its points and is
reported once, as one progress line; every point carries table, job, run id, setting versions and arm (in a run
over several tables, its table's own arm: ``arms.for_table``).
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Optional

from pipeline_opt.app.arms import attach, name_of, unit_of
from pipeline_opt.config import load
from pipeline_opt.errors import ConfigError, PipelineOptError
from pipeline_opt.monitor import controlled
from pipeline_opt.monitor.facts import Record, canonical, records
from pipeline_opt.monitor.metrics import Recorder, host_rss_bytes, is_oom
from pipeline_opt.monitor.settings import MonitorConfig

if TYPE_CHECKING:  # numpy and pyarrow load only once a run records, not for every command's start
    from pipeline_opt.monitor.rollouts import Resolved, Settings

ENV = "PIPELINE_OPT_MONITOR"
DEFAULT_CONF = Path("conf/monitor.yml")
RECORDED_PARTS = ("tables", "maintenance", "loader", "training", "cache")  # app.jobs modules whose jobs record
PROBED_JOBS = ("compact", "partitioning")  # jobs judged by the read latency of the tables they commit to
CLOCK: Callable[[], float] = time.time  # the time of every point and decision (a test sets a simulated clock)


def monitor_config(base_dir: Optional[str] = None) -> Optional[MonitorConfig]:
    """The monitor settings in force, or None when monitoring is off. With ``base_dir`` (a job's ``--base-dir``,
    against which its relative table paths resolve) relative metrics and settings locations resolve against it too:
    they live beside the tables (the bundle's jobs run elsewhere than the folder their config names)."""
    named = os.environ.get(ENV, "").strip()
    if named.lower() == "off":
        return None
    path = Path(named) if named else DEFAULT_CONF
    if not path.is_file():
        if named:
            raise ConfigError(f"{ENV}={named}: no such monitor config")
        return None
    config = load(path, MonitorConfig)
    if base_dir:
        config.metrics_table, config.config_store = (_beside(str(base_dir), config.metrics_table),
                                                     _beside(str(base_dir), config.config_store))
    if not config.record or not _in_lakehouse(config.metrics_table):
        return None
    return config


def monitor_settings(path: Optional[str] = None) -> MonitorConfig:
    """The monitor config for the commands that manage settings: ``path``, else the one in force, else defaults."""
    named = path or os.environ.get(ENV, "").strip()
    if named and named.lower() != "off":
        return load(named, MonitorConfig)
    return load(DEFAULT_CONF, MonitorConfig) if DEFAULT_CONF.is_file() else MonitorConfig()


@contextmanager
def monitoring(conf: str | Path, clock: Optional[Callable[[], float]] = None) -> Iterator[None]:
    """Jobs run inside record per the monitor config ``conf`` (and on ``clock``); the previous state comes back."""
    global CLOCK
    before, before_clock = os.environ.get(ENV), CLOCK
    os.environ[ENV], CLOCK = str(conf), clock or CLOCK
    try:
        yield
    finally:
        CLOCK = before_clock
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def _beside(base: str, location: str) -> str:
    if "://" in location or os.path.isabs(location):
        return location
    return f"{base.rstrip('/')}/{location}"


def _in_lakehouse(location: str) -> bool:
    return "://" in location or Path(location).absolute().parent.is_dir()


def recorded(job: str, module: str) -> bool:
    return module.rsplit(".", 1)[-1] in RECORDED_PARTS


def location_options(location: str) -> Optional[dict]:
    """The object store's options for a metrics table or settings store on S3 (None for a local one)."""
    if "://" not in location:
        return None
    from pipeline_opt.app.selection import storage_options

    return storage_options(location)


@dataclass
class Recording:
    """One job run's monitoring."""

    job: str
    config: MonitorConfig
    unit: str  # what the A/B split hashes: the table's name, else the log or config the job runs on, else the run
    table: str  # the table the run acts on, where it names one
    recorder: Recorder
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

        options = location_options(config.metrics_table)
        # someone else's table is refused before the job runs
        table = check_metrics_location(config.metrics_table, options)
        recorder = Recorder(job=job, sinks=[DeltaSink(config.metrics_table, options, table=table)], clock=CLOCK,
                            flush_every=10**6)
        acts_on = given.get("path") or (given["table"] if isinstance(given.get("table"), str) else "")
        settings = Settings(config.config_store, config, CLOCK, storage_options=location_options(config.config_store))
        return cls(job, config, unit_of(given) or f"run-{recorder.run_id}", name_of(str(acts_on)) if acts_on else "",
                   recorder, settings, dry_run=str(given.get("dry_run", "")).lower() in ("true", "1", "yes"))

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
        out = {"arm": "candidate" if any(r.arm == "candidate" for r in resolved) else
               ("baseline" if any(r.arm for r in resolved) else ""),
               "version": ",".join(sorted([f"{r.key}@v{r.version}" if r.version is not None else f"{r.key}@default"
                                           for r in resolved] + [f"{key}@given" for key in self.given]))}
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
            self._safely("failure", partial(self._failed, e, time.perf_counter() - started))
            self._finish(ctx)
            raise
        seconds = time.perf_counter() - started
        self._safely("facts", lambda: self._facts(result, seconds))
        if self.job in PROBED_JOBS and self.config.probe and ctx.has_spark:
            self._safely("probe", lambda: self._probe(ctx.spark, result))
        self._finish(ctx)
        return result

    # ------------------------------------------------------------------ points
    def _facts(self, result: Any, seconds: float) -> None:
        base = self.labels()
        rows = records(result, self._table())
        self.recorder.gauge("job.wall_s", seconds, "s", table=rows[0].table if len(rows) == 1 else "", **base)
        # the driver's memory is a fact of the run, not the memory the settings govern: kept out of ``memory.*``,
        # which the memory trigger watches against the baseline
        self.recorder.gauge("host.rss_bytes", host_rss_bytes(), "bytes", **base)
        for rec in rows:
            labels = {**self.labels(name_of(rec.table)), "table": name_of(rec.table)}
            for key, value in rec.facts.items():
                self.recorder.gauge(f"fact.{key}", value, "", **labels)
                name = canonical(key)
                if name == "event.oom":
                    if value > 0:
                        self.recorder.record(name, value, "event", None, **labels)
                elif name is not None:
                    self.recorder.gauge(name, value, None, **labels)

    def _failed(self, error: BaseException, seconds: float) -> None:
        labels = {**self.labels(), "table": self._table()}
        self.recorder.gauge("job.wall_s", seconds, "s", **labels)
        self.recorder.record("event.job_failed", 1, "event", "count", error=type(error).__name__, **labels)
        if is_oom(error):
            self.recorder.oom(error=type(error).__name__, **labels)

    def _probe(self, spark, result: Any) -> None:
        from pipeline_opt.app.probe import probe_tables, touched_partitions

        for rec, query, seconds in probe_tables(spark, _committed(records(result)), self.config.probe_queries,
                                                touched_partitions(result)):
            self.recorder.record("latency.query", seconds, "timer", "s", probe=query,
                                 **{**self.labels(name_of(rec.table)), "table": name_of(rec.table)})

    def _table(self) -> str:
        return self.table

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
            ctx.progress(f"monitoring: {self.problems[0]}" + (f" (and {len(self.problems) - 1} more)"
                                                              if len(self.problems) > 1 else "")
                         + "; the job's own result stands")
        self.problems.clear()

    def _step_rollouts(self) -> None:
        every = self.resolved + [r for resolved, _ in self.per_table.values() for r in resolved]
        running = list({r.key: r for r in every if r.rollout}.values())
        if not running:
            return
        from pipeline_opt.monitor.store import read_metrics

        points = read_metrics(self.config.metrics_table, location_options(self.config.metrics_table))
        for r in running:
            step = self.settings.step(r.key, points)
            if step is not None and step.action in ("advance", "promote", "rollback"):
                self.recorder.record(f"event.{'rollback' if step.action == 'rollback' else 'rollout'}", 1, "event",
                                     "count", setting=r.key, rollout=r.rollout, action=step.action,
                                     percent=f"{step.percent:g}", reason=step.reason)
        self.recorder.flush()

    def _safely(self, what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as e:  # monitoring must never take the job's work down
            self._problem(what, e)

    def _problem(self, what: str, error: Exception) -> None:
        self.problems.append(f"{what}: {type(error).__name__}: {error}")


def _committed(rows: list[Record]) -> list[Record]:
    """The records of tables a commit changed (a dry run, or nothing rewritten, changes nothing to time)."""
    return [r for r in rows if r.location and not r.facts.get("dry_run") and
            (r.facts.get("files_added", 0) > 0 or r.facts.get("applied", 0) > 0)]


def run_recorded(job: str, module: str, given: Mapping[str, Any], ctx,
                 parse: Callable[[Mapping[str, Any]], Any], work: Callable[[Any], Any]) -> Any:
    """``work(parse(given))``, monitored when monitoring is on; the store fills the settings not given."""
    args = parse(given)  # the caller's input is checked before anything is read or written
    config = monitor_config(given.get("base_dir") or None) if recorded(job, module) else None
    if config is None:
        return work(args)
    try:
        recording = Recording.open(job, given, config)
    except PipelineOptError:
        raise  # a metrics location that is someone else's: refused before the job runs
    except Exception as e:  # an unreadable metrics table costs the recording, never the job
        ctx.progress(f"monitoring: metrics table {config.metrics_table}: {type(e).__name__}: {e}; "
                     "the job runs unrecorded")
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
