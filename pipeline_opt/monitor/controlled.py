"""The settings under rollout control: which job parameter each one sets, how a value is checked, what judges it.

Invariants: a setting's value is stored as the text a person would give the job's parameter (``128MB``,
``s3fifo``, ``bf16+full+adamw``), so a job reads it through the same parameter conversion as a flag; ``check``
runs the owning part's own validation and raises one ``PipelineOptError`` for a bad value before any table or store
sees it; an unknown key names the known ones; the judging metric is the first of ``judged_by`` that the runs under
rollout recorded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pipeline_opt.errors import PipelineOptError
from pipeline_opt.units import parse_size


class SettingError(PipelineOptError):
    """An unknown setting key, or a value the setting's part refuses."""


def _size(text: Any) -> str:
    try:
        n = parse_size(text)
    except ValueError as e:
        raise SettingError(str(e)) from None
    if n < 1:
        raise SettingError(f"{text!r}: a size must be at least 1 byte")
    return str(text).strip()


def _cache_policy(text: Any) -> str:
    from pipeline_opt.cache import policies

    name = str(text).strip()
    known = ["planned", *(n for n in policies.names() if n != "planned")]
    if name not in known:
        raise SettingError(f"cache policy {name!r} is not one of {', '.join(known)}")
    return name


def _training_plan(text: Any) -> str:
    from pipeline_opt.training.plan import Plan

    return Plan.parse(str(text).strip()).name  # raises TrainingError (a PipelineOptError) for a bad plan


def _budget_gib(text: Any) -> str:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise SettingError(f"{text!r} is not a number of GiB") from None
    if not value > 0:
        raise SettingError(f"{text!r}: a memory budget must be positive")
    return f"{value:g}"


def _whole(text: Any, what: str, low: int, high: int) -> str:
    """``text`` as a whole number of ``what`` from ``low`` to ``high``, in canonical text."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise SettingError(f"{text!r} is not a whole number of {what}") from None
    if not low <= value <= high:
        raise SettingError(f"{value} {what}: must be {low} to {high}")
    return str(value)


def _workers(text: Any) -> str:
    return _whole(text, "workers", 0, 64)


def _prefetch(text: Any) -> str:
    return _whole(text, "batches read ahead", 1, 1024)


# judging metrics where more is better; for the others (latency, memory, files written) less is
HIGHER_IS_BETTER = frozenset({"cache.hit_rate", "cache.byte_hit_rate", "fact.kept_bytes", "throughput.rows_per_s",
                              "throughput.tokens_per_s", "fact.share_inside_after"})


@dataclass(frozen=True)
class Controlled:
    key: str
    help: str
    params: dict[str, str]  # job name → the parameter this setting fills
    check: Callable[[Any], str]  # value → its canonical text, or SettingError
    judged_by: tuple[str, ...]  # metric names, first recorded one wins

    def higher_is_better(self, metric: str) -> bool:
        return metric in HIGHER_IS_BETTER


SETTINGS = {s.key: s for s in (
    Controlled("compaction.target_file_size", "target size of compacted files",
               {"compact": "target_file_size"}, _size, ("latency.query", "fact.share_inside_after")),
    Controlled("compaction.min_file_size", "floor of the file-size window",
               {"compact": "min_file_size", "health": "min_file_size"}, _size,
               ("latency.query", "fact.share_inside_after")),
    Controlled("compaction.max_file_size", "ceiling of the file-size window",
               {"compact": "max_file_size", "health": "max_file_size"}, _size,
               ("latency.query", "fact.share_inside_after")),
    Controlled("cache.policy", "cache policy of cache plan", {"cache plan": "policy"}, _cache_policy,
               ("cache.hit_rate", "fact.kept_bytes")),
    Controlled("cache.budget", "cache budget of cache plan", {"cache plan": "budget"}, _size,
               ("cache.hit_rate", "fact.kept_bytes")),
    Controlled("training.plan", "memory plan (precision+checkpointing+optimizer…)",
               {"memory-plan": "plan", "train": "plan"}, _training_plan,
               ("memory.gpu_peak_bytes", "fact.chosen.peak_bytes")),
    Controlled("training.budget_gib", "device memory budget per rank",
               {"memory-plan": "budget_gib", "train": "budget_gib"}, _budget_gib,
               ("memory.gpu_peak_bytes", "fact.chosen.peak_bytes")),
    Controlled("loader.workers", "loader worker processes", {"stream": "workers"}, _workers,
               ("throughput.rows_per_s",)),
    Controlled("loader.prefetch", "loader batches read ahead", {"stream": "prefetch"}, _prefetch,
               ("throughput.rows_per_s",)),
)}


def setting(key: str) -> Controlled:
    if key not in SETTINGS:
        raise SettingError(f"unknown setting {key!r}; known: {', '.join(sorted(SETTINGS))}")
    return SETTINGS[key]


def check_value(key: str, value: Any) -> str:
    """The canonical text of ``value`` for setting ``key``; raises ``SettingError`` naming both when it is bad."""
    spec = setting(key)
    try:
        return spec.check(value)
    except PipelineOptError as e:
        raise SettingError(f"setting {key}: {e}") from None


def for_job(job: str) -> list[Controlled]:
    """The settings that fill a parameter of ``job``."""
    return [s for s in SETTINGS.values() if job in s.params]
