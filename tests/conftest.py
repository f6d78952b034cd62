"""The one Spark session of the test suite, and markers that skip what this machine cannot run."""
from __future__ import annotations

import os

import pytest

# The CPU memory model describes oneDNN's AVX2 kernels, which upcast bf16 to fp32 buffers. On CPUs with native bf16
# (AVX512-BF16, AMX) oneDNN skips those buffers and peaks come out ~15 % lower than predicted (a safe over-estimate);
# pinning the ISA makes the measured-vs-predicted tests check the path the model describes on every CPU. Set before
# torch runs its first oneDNN primitive, which is when oneDNN reads it.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")


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
