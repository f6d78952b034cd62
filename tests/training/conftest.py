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


def tiny_resnet():
    from pipeline_opt.training.workload import Workload

    return Workload.of("pipeline_opt.training.models.resnet:build", dict(widths=[8, 16], depth=2, classes=10),
                       ["pixels=float32[4,3,16,16]", "labels=int64[4]<10"])


def tiny_bert(experts: int = 0, layers: int = 2):
    from pipeline_opt.training.workload import Workload

    return Workload.of("pipeline_opt.training.models.bert:build",
                       dict(vocab=256, d_model=32, layers=layers, heads=2, max_len=32, experts=experts),
                       ["input_ids=int64[4,16]<256", "labels=int64[4,16]<256"], stack_arg="layers")


def measured_peak(workload, plan, steps: int = 2, **trainer) -> dict:
    """The last of ``steps`` real training steps on CPU, measured by torch's profiler (the steady state: optimizer
    state exists from the second step on)."""
    import torch

    from pipeline_opt.training.loop import Trainer

    torch.manual_seed(0)
    model = workload.build()
    batch = workload.make_batch()
    run = Trainer(model, [plan], device="cpu", compile_step=False, measure_every=1, loss_fn=workload.loss_fn(model),
                  **trainer)
    for _ in range(steps):
        run.train_step(batch)
    return run.memory[-1]


def write_token_table(path, rows: int = 256, seq: int = 16, vocab: int = 256, seed: int = 0):
    """A real Delta table with array columns of token ids (``input_ids``, ``labels``)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, (rows, seq))
    table = pa.table({"input_ids": pa.array(ids.tolist(), pa.list_(pa.int64())),
                      "labels": pa.array(np.roll(ids, -1, axis=1).tolist(), pa.list_(pa.int64()))})
    write_deltalake(str(path), table)
    return path
