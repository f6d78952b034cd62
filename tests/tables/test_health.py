"""health.py: window statistics per table and partition, from the Delta log only."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from deltalake import write_deltalake

from pipeline_opt.delta import read_snapshot
from pipeline_opt.tables.health import table_health
from pipeline_opt.tables.settings import Window
from tests.harness.synthetic_log import write_synthetic_log


def test_health_reads_only_the_log(tmp_path):
    # No data file exists: any storage read or listing beyond _delta_log would fail or count nothing.
    n = 5000
    sizes = np.where(np.arange(n) % 5 == 0, 50 * 10**6, 10**6)
    path = write_synthetic_log(tmp_path / "t", sizes, [f"p{i % 7}" for i in range(n)])
    h = table_health(str(path), Window(16 * 10**6, 10**9))
    assert h.stats.files == n and h.stats.bytes == int(sizes.sum())
    assert h.stats.files_inside == n // 5 and h.stats.files_below == n - n // 5 and h.stats.files_above == 0
    assert h.stats.share_inside == (n // 5) * 50 * 10**6 / sizes.sum()
    assert [p.values["part"] for p in h.partitions] == [f"p{i}" for i in range(7)]
    assert sum(p.stats.files for p in h.partitions) == n
    assert not h.healthy and "p0" in h.render()


def test_health_of_a_real_table_and_its_versions(tmp_path):
    path = str(tmp_path / "t")
    for i in range(3):
        write_deltalake(path, pa.table({"id": np.arange(100) + 100 * i, "g": ["a", "b"] * 50}),
                        mode="append", partition_by=["g"])
    h = table_health(path, Window(1, 10**9))
    assert h.version == 2 and h.stats.files == 6 and h.stats.rows == 300 and h.healthy
    assert [p.values for p in h.partitions] == [{"g": "a"}, {"g": "b"}]
    assert table_health(path, Window(1, 10**9), version=0).stats.files == 2
    files = read_snapshot(path)
    assert files.deleted.sum() == 0 and len(files.paths) == 6
