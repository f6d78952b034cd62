"""Named product workloads for the generator: the cases the cache is judged on, at a chosen scale.

Each preset is a ``WorkloadSpec`` built from the product's own patterns (what the loader, the maintenance schedule
and Spark jobs read); ``scale`` multiplies every file count (1.0: a few hundred to a thousand files per table, a
few thousand to tens of thousands of requests). Invariant: a preset at a scale is one fixed spec, so a generated
trace can be regenerated exactly (the shipped test traces are checked that way).
"""
from __future__ import annotations

from typing import Callable

from pipeline_opt.cache.generate import LoaderSpec, ScanSpec, TableSpec, WorkloadSpec
from pipeline_opt.errors import PipelineOptError

MIB = 2**20


def _n(files: int, scale: float) -> int:
    return max(8, int(files * scale))


def loader_epochs(scale: float = 1.0) -> WorkloadSpec:
    """One loader reading one table epoch after epoch in its seeded shuffled order."""
    return WorkloadSpec("loader-epochs", [TableSpec("train", _n(600, scale), 32 * MIB, 0.5)],
                        [LoaderSpec("train", seed=1, epochs=6)])


def loaders_shared(scale: float = 1.0) -> WorkloadSpec:
    """Four training jobs on three tables share one file cache (two jobs on one table, different seeds)."""
    tables = [TableSpec("events", _n(800, scale), 32 * MIB, 0.5), TableSpec("images", _n(300, scale), 96 * MIB, 0.4),
              TableSpec("labels", _n(200, scale), 8 * MIB, 0.6)]
    loaders = [LoaderSpec("events", seed=1, epochs=4), LoaderSpec("events", seed=2, epochs=4, speed=0.7),
               LoaderSpec("images", seed=3, epochs=6, speed=0.5), LoaderSpec("labels", seed=4, epochs=10, speed=0.6)]
    return WorkloadSpec("loaders-shared", tables, loaders)


def training_maintenance(scale: float = 1.0) -> WorkloadSpec:
    """Two training jobs, nightly health/compaction scans of two tables, a one-off VACUUM dry run of an archive
    table (announced by nobody) and 5 % ad-hoc reads."""
    tables = [TableSpec("events", _n(700, scale), 32 * MIB, 0.5), TableSpec("sessions", _n(300, scale), 16 * MIB),
              TableSpec("orders", _n(400, scale), 8 * MIB, 0.7), TableSpec("customers", _n(150, scale), 4 * MIB),
              TableSpec("archive", _n(900, scale), 64 * MIB, 0.3)]
    night = _n(1500, scale)
    return WorkloadSpec("training-maintenance", tables,
                        [LoaderSpec("events", seed=1, epochs=5), LoaderSpec("sessions", seed=2, epochs=8, speed=0.5)],
                        [ScanSpec("orders", every=night), ScanSpec("customers", every=night, first=night + 40),
                         ScanSpec("archive", every=night, first=int(2.5 * night), runs=1, announce=False)],
                        adhoc_share=0.05, adhoc_tables=["orders", "customers"])


def spark_schedule(scale: float = 1.0) -> WorkloadSpec:
    """Spark jobs reading tables on a schedule (hourly and nightly, announced by the scheduler), a training job,
    and 30 % ad-hoc queries on a fact table that nobody announces."""
    tables = [TableSpec("sales", _n(1000, scale), 16 * MIB, 0.6), TableSpec("daily_agg", _n(150, scale), 64 * MIB),
              TableSpec("hourly_kpi", _n(80, scale), 8 * MIB), TableSpec("features", _n(400, scale), 32 * MIB)]
    hour = _n(600, scale)
    scans = [ScanSpec("hourly_kpi", every=hour, first=0), ScanSpec("daily_agg", every=6 * hour, first=hour)]
    return WorkloadSpec("spark-schedule", tables, [LoaderSpec("features", seed=5, epochs=6, speed=1.0)], scans,
                        adhoc_share=0.3, adhoc_tables=["sales"], adhoc_alpha=0.8)


def wrong_plans(scale: float = 1.0) -> WorkloadSpec:
    """Two loaders whose announced orders are wrong: they claim a different seed than they read with."""
    tables = [TableSpec("events", _n(600, scale), 32 * MIB, 0.5), TableSpec("labels", _n(200, scale), 8 * MIB)]
    return WorkloadSpec("wrong-plans", tables, [LoaderSpec("events", seed=1, epochs=6, announced_seed=101),
                                                LoaderSpec("labels", seed=2, epochs=10, speed=0.5,
                                                           announced_seed=202)])


PRESETS: dict[str, Callable[[float], WorkloadSpec]] = {
    "loader-epochs": loader_epochs, "loaders-shared": loaders_shared, "training-maintenance": training_maintenance,
    "spark-schedule": spark_schedule, "wrong-plans": wrong_plans}


def preset(name: str, scale: float = 1.0) -> WorkloadSpec:
    if name not in PRESETS:
        raise PipelineOptError(f"unknown workload preset {name!r}; known: {', '.join(PRESETS)}")
    if not 0 < scale <= 100:
        raise PipelineOptError(f"workload scale {scale} is not in (0, 100]")
    spec = PRESETS[name](scale)
    spec.validate()
    return spec
