"""One description of every job — its parameters and what it returns — used by every way of starting it.

Invariants: a job is a ``Job`` in ``JOBS`` (``app.jobs`` registers them all); the command line (``cli``),
spark-submit (``submit``), Databricks notebooks (``notebook``) and the cluster driver (``driver``) all turn their
input into the same parameter mapping and call ``jobs.run_job``, so the same job with the same parameters gives the
same result whichever way it started. Parameters are checked by ``parse_params`` (unknown names and bad values raise
one ``PipelineOptError`` naming them) before the job runs; a Spark session is started only when the job first asks
``Context.spark`` for it. Every run goes through ``recording.run_recorded``: when monitoring is on, the settings under
rollout control that were not given come from the versioned store, and what the job returned is recorded.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from pipeline_opt.app.recording import run_recorded
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.units import bounded_int, finite_float, parse_size


def size(text: Any) -> int:
    """A byte size parameter (``16MB``, ``1GiB`` or plain bytes)."""
    try:
        return parse_size(text)
    except ValueError as e:
        raise PipelineOptError(str(e)) from None


def count(text: Any) -> int:
    """A whole number of at least 0 (a version, a number of workers)."""
    return bounded_int(text, "count", minimum=0)


def positive_int(text: Any) -> int:
    return bounded_int(text, "number", minimum=1)


def positive_float(text: Any) -> float:
    """A finite number above 0 (NaN and infinity are refused)."""
    return finite_float(text, "number", positive=True)


def columns(text: Any) -> list[str]:
    """A comma-separated list of names (a list passes through)."""
    items = text if isinstance(text, list) else str(text).split(",")
    return [str(c).strip() for c in items if str(c).strip()]


@dataclass(frozen=True)
class Param:
    """One parameter of a job: ``--name-with-dashes`` on the command line, ``name`` everywhere else."""

    name: str
    help: str
    type: Callable[[Any], Any] = str  # converts text (command line, widget) or a JSON value to the parameter
    default: Any = None
    positional: bool = False  # given by position on the command line (optional unless ``required``)
    flag: bool = False  # an on/off switch, off by default
    repeat: bool = False  # a list: the option given several times (comma-separated in a widget)
    required: bool = False
    choices: tuple = ()
    cli: Optional[str] = None  # the command-line spelling, when it is not --name-with-dashes

    @property
    def option(self) -> str:
        return self.cli or "--" + self.name.replace("_", "-")

    def convert(self, value: Any) -> Any:
        """The parameter's value from ``value`` (text, or a value already typed, as JSON gives it)."""
        if self.flag:
            return _truth(self.name, value)
        if self.repeat:
            items = value if isinstance(value, (list, tuple)) else [v for v in str(value).split(",") if v.strip()]
            return [self._one(v) for v in items]
        return self._one(value)

    def _one(self, value: Any) -> Any:
        try:
            converted = self.type(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError) as e:
            raise PipelineOptError(f"{self.option} {value!r}: {e}") from None
        except PipelineOptError as e:
            raise PipelineOptError(f"{self.option}: {e}") from None
        if self.choices and converted not in self.choices:
            raise PipelineOptError(f"{self.option} {value!r} is not one of {', '.join(map(str, self.choices))}")
        return converted


def _truth(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise PipelineOptError(f"{name}: {value!r} is not true or false")


class Context:
    """What a running job may use: the Spark session (started on first use unless given) and a progress line."""

    def __init__(self, job: str, spark=None, progress: Optional[Callable[[str], None]] = None):
        self.job, self._spark = job, spark
        self.progress = progress or (lambda message: print(f"[{job}] {message}", file=sys.stderr, flush=True))

    @property
    def spark(self):
        if self._spark is None:
            from pipeline_opt.spark import get_spark

            self._spark = get_spark(f"pipeline_opt-{self.job.replace(' ', '-')}")
        return self._spark

    @property
    def has_spark(self) -> bool:
        return self._spark is not None


@dataclass(frozen=True)
class Job:
    name: str  # "compact", or "cache plan" for a command with a group
    help: str
    run: Callable[[Context, argparse.Namespace], Any]
    params: tuple[Param, ...] = field(default_factory=tuple)
    json: bool = True  # has a --json switch on the command line

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)


JOBS: dict[str, Job] = {}


def job(name: str, help: str, *params: Param, json: bool = True):
    """Register the decorated ``run(ctx, args)`` as job ``name``."""
    def register(run: Callable[[Context, argparse.Namespace], Any]) -> Callable:
        if name in JOBS:
            raise AssertionError(f"job {name!r} is registered twice")
        JOBS[name] = Job(name, help, run, tuple(params), json)
        return run
    return register


def parse_params(spec: Job, given: Mapping[str, Any]) -> argparse.Namespace:
    """The job's parameters from ``given`` (name → text or JSON value); absent ones take their defaults."""
    known = {p.name for p in spec.params}
    unknown = sorted(set(given) - known)
    if unknown:
        raise PipelineOptError(f"{spec.name}: unknown parameter {unknown[0]!r}; known: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for p in spec.params:
        value = given.get(p.name)
        if value is None or (isinstance(value, str) and not value.strip() and not p.flag):
            if p.required:
                raise PipelineOptError(f"{spec.name}: {p.option} is required")
            values[p.name] = False if p.flag else ([] if p.repeat and p.default is None else p.default)
        else:
            values[p.name] = p.convert(value)
    return argparse.Namespace(**values)


def run(spec: Job, params: Mapping[str, Any], spark=None, progress: Optional[Callable[[str], None]] = None) -> Any:
    """Run ``spec`` with ``params`` (checked first); ``spark``: the session to use (else started on demand)."""
    ctx = Context(spec.name, spark, progress)
    return run_recorded(spec.name, spec.run.__module__, params, ctx, lambda given: parse_params(spec, given),
                        lambda args: spec.run(ctx, args))
