"""A tiny demo lakehouse (TPC-H scale 0.01, a few small commits), generated once for the demo's tests."""
from __future__ import annotations

import pytest

from pipeline_opt.app.demo.lakehouse import generate

TINY = {"lineitem": (4, 3), "orders": (2, 2)}


@pytest.fixture(scope="session")
def tiny_lakehouse(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("lh") / "lakehouse"
    return root, generate(root, 0.01, spark=spark, progress=lambda m: None, ingest=TINY)
