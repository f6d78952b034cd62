"""Every job of the product, one module per part; importing this package registers them all in ``job.JOBS``."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

from pipeline_opt.app.job import JOBS, Job, run
from pipeline_opt.app.jobs import cache, cluster, loader, maintenance, monitor, rollout, setup, tables, training
from pipeline_opt.errors import PipelineOptError

PARTS = (setup, tables, maintenance, loader, training, cache, monitor, rollout, cluster)  # the order of ``--help``


def all_jobs() -> dict[str, Job]:
    """Every job, grouped by part in ``PARTS`` order."""
    order = [part.__name__ for part in PARTS]
    return dict(sorted(JOBS.items(), key=lambda item: order.index(item[1].run.__module__)))


def find_job(name: str) -> Job:
    if name not in JOBS:
        raise PipelineOptError(f"unknown job {name!r}; known: {', '.join(sorted(JOBS))}")
    return JOBS[name]


def run_job(name: str, params: Mapping[str, Any], spark=None,
            progress: Optional[Callable[[str], None]] = None) -> Any:
    """Run job ``name`` with ``params`` (checked first); ``spark``: the session to use (else started on demand)."""
    return run(find_job(name), params, spark, progress)
