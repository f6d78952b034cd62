"""The cases of the side-by-side loader benchmark: one epoch of the same table through each loader, as torch batches.

Every case yields dicts column → tensor of ``BATCH`` rows with the same 8 columns (decimals as float64), shuffled
the way that loader shuffles: ours by its seeded window shuffle; Ray Data and HF ``datasets`` by their own shuffle
buffers of ``WINDOW`` rows; polars and the torchdata Parquet dataset, which have no streaming shuffle of their own,
by a window shuffle of the same size written here on top of their batches. ``pyarrow_scan`` is the reference: it
only decodes (no shuffle, no tensors). Parquet-only cases read every data file in the table's folder, which is what
pointing them at a Delta table gives; they cannot apply deletion vectors.

Each case returns an ``Epochs``: what a training job builds once (a dataset, a loader, its workers) is built once, and
each iteration over it is one epoch, so the steady state is measured apart from start-up.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from torch.utils.data import IterableDataset, get_worker_info

COLS = ["l_orderkey", "l_partkey", "l_suppkey", "l_linenumber", "l_quantity", "l_extendedprice", "l_discount", "l_tax"]
BATCH = 8192
WINDOW = 65536
SEED = 0


def parquet_files(table: str) -> list:
    return sorted(str(p) for p in Path(table).glob("**/*.parquet") if "_delta_log" not in p.parts)


def _float_decimals(batch):
    """A pyarrow batch/table with decimal columns cast to float64 (a tensor cannot hold a decimal)."""
    cols = [pc.cast(c, pa.float64()) if pa.types.is_decimal(c.type) else c for c in batch.columns]
    return type(batch).from_arrays(cols, names=batch.schema.names)


def window_shuffle(chunks, seed: int = SEED):
    """Batches of ``BATCH`` tensors from dicts of NumPy columns, rows permuted inside windows of ``WINDOW`` rows."""
    import torch

    rng, pending, held = np.random.default_rng(seed), [], 0

    def flush(parts):
        cols = {c: np.concatenate([p[c] for p in parts]) for c in COLS}
        perm = rng.permutation(len(cols[COLS[0]]))
        cols = {c: a[perm] for c, a in cols.items()}
        for lo in range(0, len(perm), BATCH):
            yield {c: torch.from_numpy(a[lo:lo + BATCH]) for c, a in cols.items()}

    for chunk in chunks:
        pending.append(chunk)
        held += len(chunk[COLS[0]])
        if held >= WINDOW:
            yield from flush(pending)
            pending, held = [], 0
    if pending:
        yield from flush(pending)


class Epochs:
    """Iterating runs one epoch: ``epoch()`` returns its batches; what the case built once lives in its closure."""

    def __init__(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        return iter(self.epoch())


# -- the cases: each returns an Epochs ---------------------------------------------------------------------------
def pyarrow_scan(table: str, workers: int = 0):
    import pyarrow.dataset as pds

    dataset = pds.dataset(parquet_files(table), format="parquet")
    return Epochs(lambda: ({c: b.column(c) for c in COLS}
                           for b in dataset.to_batches(columns=COLS, batch_size=WINDOW)))


def ours(table: str, workers: int = 0):
    """One loader for all epochs; its workers (if any) persist across epochs, as torch's ``persistent_workers``."""
    from pipeline_opt.loader import DeltaDataset, DeltaLoader

    ds = DeltaDataset(table, columns=COLS, batch_size=BATCH, shuffle=True, seed=SEED, shuffle_buffer=WINDOW)
    try:
        return DeltaLoader(ds, num_workers=workers, persistent_workers=workers > 0)
    except TypeError:  # a baseline loader from before persistent workers
        return DeltaLoader(ds, num_workers=workers)


def hf_datasets(table: str, workers: int = 0):
    import datasets
    from datasets import load_dataset

    it = load_dataset("parquet", data_files=parquet_files(table), split="train", streaming=True).select_columns(COLS)
    feats = datasets.Features({c: datasets.Value("float64" if "decimal" in str(f) else f.dtype)
                               for c, f in it.features.items()})
    it = it.cast(feats).shuffle(seed=SEED, buffer_size=WINDOW).with_format("torch")
    return Epochs(lambda: it.iter(batch_size=BATCH))


def ray_setup() -> None:
    import logging

    import ray

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=1 << 30, logging_level=logging.ERROR,
             log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False


def ray_data(table: str, workers: int = 0):
    import ray

    ds = ray.data.read_delta(table, columns=COLS).map_batches(_float_decimals, batch_format="pyarrow")
    return Epochs(lambda: ds.iter_torch_batches(batch_size=BATCH, local_shuffle_buffer_size=WINDOW,
                                                local_shuffle_seed=SEED))


def polars_delta(table: str, workers: int = 0):
    import polars as pl

    lf = pl.scan_delta(table).select(COLS).with_columns(pl.col(pl.Decimal).cast(pl.Float64))
    return Epochs(lambda: window_shuffle({c: frame[c].to_numpy() for c in COLS}
                                         for frame in lf.collect_batches(chunk_size=WINDOW)))


class ParquetFiles(IterableDataset):
    """A plain Parquet ``IterableDataset`` for torchdata's ``StatefulDataLoader``: files split across workers, file
    order and rows inside windows shuffled, decimals cast in Arrow."""

    def __init__(self, files: list):
        self.files = files

    def __iter__(self):
        import pyarrow.parquet as pq

        info = get_worker_info()
        order = np.random.default_rng(SEED).permutation(len(self.files))
        mine = order[info.id::info.num_workers] if info else order
        chunks = ({c: b.column(c).to_numpy() for c in COLS}
                  for i in mine for b in pq.ParquetFile(self.files[i]).iter_batches(WINDOW, columns=COLS)
                  for b in [_float_decimals(b)])
        yield from window_shuffle(chunks, SEED + (info.id if info else 0))


def torchdata_parquet(table: str, workers: int = 0):
    from torchdata.stateful_dataloader import StatefulDataLoader

    return StatefulDataLoader(ParquetFiles(parquet_files(table)), batch_size=None, num_workers=workers)


def baseline_setup() -> None:
    """Our loader as it was before a change: ``PIPELINE_OPT_LOADER_BASELINE`` names a folder holding a copy of the
    ``pipeline_opt/loader`` package from then, imported in place of today's (the rest of the project is today's)."""
    import importlib.util
    import os
    import sys

    folder = Path(os.environ["PIPELINE_OPT_LOADER_BASELINE"]) / "loader"
    spec = importlib.util.spec_from_file_location("pipeline_opt.loader", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["pipeline_opt.loader"] = module
    spec.loader.exec_module(module)


# name → (function, workers, setup)
CASES = {
    "pyarrow_scan": (pyarrow_scan, 0, None),
    "ours_w0": (ours, 0, None),
    "ours_w1": (ours, 1, None),
    "ours_w2": (ours, 2, None),
    "baseline_w0": (ours, 0, baseline_setup),
    "baseline_w2": (ours, 2, baseline_setup),
    "hf_datasets": (hf_datasets, 0, None),
    "ray_data": (ray_data, 0, ray_setup),
    "polars": (polars_delta, 0, None),
    "torchdata_parquet": (torchdata_parquet, 0, None),
}
# Peers that do not install beside this project's pins (setup.cfg's bench extra says why).
NOT_INSTALLED = {
    "daft": "daft 0.7.26 requires pyarrow<26 (the project has 26.0.1); left out of the bench extra",
    "mosaic_streaming": "mosaicml-streaming 0.13.0 requires numpy<2.2 and transformers<5 (the project has numpy "
                        "2.4.6); left out of the bench extra",
}
