"""The one Spark session of the test suite, and markers that skip what this machine cannot run."""
from __future__ import annotations

import pytest


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if gpu_items and not _has_cuda():
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason="needs CUDA"))


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """A real local Spark session with Delta Lake, shared by every test."""
    from pipeline_opt.spark import get_spark

    warehouse = tmp_path_factory.mktemp("warehouse")
    events = tmp_path_factory.mktemp("spark-events")  # the cache controller reads real event logs
    session = get_spark("pipeline_opt-tests", conf={
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": events.as_uri(),
    })
    yield session
    session.stop()
