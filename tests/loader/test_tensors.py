"""Decimals become the correctly rounded float64, and batches from worker processes (one shared-memory block per
window) hold the same columns, values and order as batches made in process. Tiny delta-rs tables."""
from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from pipeline_opt.loader import DeltaDataset, DeltaLoader
from pipeline_opt.loader.tensors import window_arrays


@pytest.mark.parametrize("precision, scale", [(15, 2), (18, 4), (38, 6)])
def test_decimal_columns_become_the_nearest_double(precision, scale):
    rng = np.random.default_rng(precision)
    unscaled = rng.integers(-(10 ** min(precision, 15)) + 1, 10 ** min(precision, 15), 3000)
    values = [Decimal(int(u)).scaleb(-scale) for u in unscaled]
    table = pa.table({"d": pa.array(values, pa.decimal128(precision, scale))}).slice(7)  # an offset into the buffer
    rows = rng.permutation(table.num_rows)
    got = window_arrays(table, np.arange(table.num_rows), {}, order=rows)["d"]
    expected = np.array([float(v) for v in values[7:]])[rows]
    if precision <= 18:  # our NumPy path: exact
        assert np.array_equal(got, expected)
    else:  # Arrow's cast: within an ulp
        assert np.allclose(got, expected, rtol=1e-15, atol=0)


def test_worker_batches_match_in_process_batches(tmp_path):
    for part in range(2):
        ids = np.arange(part * 500, (part + 1) * 500)
        write_deltalake(str(tmp_path / "t"), pa.table({
            "id": ids, "name": [f"n{i}" for i in ids], "small": ids.astype(np.int16),
            "price": pa.array([Decimal(int(i)).scaleb(-2) for i in ids], pa.decimal128(10, 2))}), mode="append")

    def epoch(workers):
        ds = DeltaDataset(tmp_path / "t", columns=["name", "id", "price", "small"], batch_size=64, shuffle=True)
        return list(DeltaLoader(ds, num_workers=workers))

    here, there = epoch(0), epoch(2)
    assert len(here) == len(there) == 16
    for a, b in zip(sorted(here, key=lambda b: int(b["id"][0])), sorted(there, key=lambda b: int(b["id"][0]))):
        assert list(b) == ["name", "id", "price", "small"] and b["small"].dtype == a["small"].dtype
        assert a["name"] == b["name"] and b["name"] == [f"n{i}" for i in b["id"].tolist()]
        assert all(np.array_equal(a[c].numpy(), b[c].numpy()) for c in ("id", "price", "small"))
        assert np.array_equal(b["price"].numpy(), b["id"].numpy() / 100)
