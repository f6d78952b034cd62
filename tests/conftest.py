"""The one Spark session of the test suite, and markers that skip what this machine cannot run."""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


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
