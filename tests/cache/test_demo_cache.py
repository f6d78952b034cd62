"""The demo's cache showcase saves bytes on a lakehouse built here (many small files, as the demo's are)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import write_deltalake

from pipeline_opt.app.demo import cache
from pipeline_opt.app.demo.inputs import DemoInputs


def _lakehouse(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for table, files, rows in (("lineitem", 40, 800), ("orders", 16, 300), ("customer", 4, 200)):
        for _ in range(files):
            n = int(rng.integers(rows // 2, rows))
            write_deltalake(str(root / table), pa.table({"k": rng.integers(0, 10**9, n), "v": rng.random(n)}),
                            mode="append")
    return root


def test_the_showcase_saves_bytes_against_lru(tmp_path):
    lake = _lakehouse(tmp_path / "lake")
    facts = cache.run(DemoInputs(lake, tmp_path / "out" / "cache", tmp_path / "out", None, Path("none")))
    assert facts["planned_bytes_saved_vs_lru"] > 0 and facts["planned_over_lru"] < 0.9
    assert facts["planned_byte_miss_ratio"] <= 1.1 * facts["offline_bound_byte_miss_ratio"]
    real = facts["real_run"]
    assert real["tables"] == ["orders", "customer"]
    lru, planned = real["lru_bytes_fetched_per_epoch"], real["planned_bytes_fetched_per_epoch"]
    assert lru[0] == planned[0] and sum(planned[1:]) < sum(lru[1:])
