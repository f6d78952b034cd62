"""Tiny models and Delta tables for the training tests (seconds each on 2 cores)."""
from __future__ import annotations

import numpy as np
import pytest

TINY = dict(kind="gpt", layers=2, d_model=64, heads=4, vocab=512, seq=32, batch=4)


@pytest.fixture
def tiny_shape():
    from pipeline_opt.training.shapes import ModelShape

    return ModelShape(**TINY)


@pytest.fixture
def tiny_batch():
    import torch

    g = torch.Generator().manual_seed(0)
    return {"tokens": torch.randint(0, TINY["vocab"], (TINY["batch"], TINY["seq"]), generator=g)}


def write_rows_table(path, rows: int = 4096, files: int = 4, seed: int = 0):
    """A real Delta table (delta-rs writer) of numeric lineitem-like columns, ``files`` commits."""
    import pyarrow as pa
    from deltalake import write_deltalake

    rng = np.random.default_rng(seed)
    per = rows // files
    for i in range(files):
        q = rng.integers(1, 51, per).astype("float64")
        price = rng.uniform(900, 2000, per)
        table = pa.table({"l_quantity": q, "l_discount": rng.uniform(0, 0.1, per), "l_tax": rng.uniform(0, 0.08, per),
                          "l_linenumber": rng.integers(1, 8, per).astype("int32"),
                          "l_extendedprice": q * price})
        write_deltalake(str(path), table, mode="append")
    return path


@pytest.fixture
def rows_table(tmp_path):
    return write_rows_table(tmp_path / "lineitem")
