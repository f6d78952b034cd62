"""The cache demo replays the shared trace when it is present, and says so when it is not."""
from __future__ import annotations

import pytest

from pipeline_opt.cache import demo


def test_demo_reports_miss_ratios(tmp_path):
    if not demo.trace_path().is_file():
        assert "skipped" in demo.run(tmp_path, tmp_path)
        pytest.skip("shared trace not present")
    facts = demo.run(tmp_path, tmp_path, requests=20_000)
    assert facts["requests"] == 20_000
    for policy in ("lru", "s3fifo", "learned"):
        assert facts["offline_bound_byte_miss_ratio"] <= facts[f"{policy}_byte_miss_ratio"] <= 1.0
