"""``DeltaDataset``: a Delta snapshot as a sharded, shuffled, resumable stream of tensor batches.

Invariants: the snapshot is pinned when the dataset is built (``version`` or the latest), so a table that changes
during training does not change what an epoch reads; each epoch, every live row is yielded exactly once across all
ranks × workers (plus ``padded_rows`` repeats when ``drop_last=False``); every rank yields ``len(dataset)`` batches;
batch contents are a pure function of (snapshot, seed, epoch, rank, batch number), independent of worker count.
Worker ``i`` of ``n`` reads a contiguous run of the rank's windows, so no two workers decode the same rows. Under a
``DeltaLoader`` with workers, a worker gathers each window into shared memory (a slot of the loader's
``SegmentPool`` when one is free) and the window leaves packed, whole (``shared.py``); the loader unpacks it and cuts
its batches, so callers see the same dicts either way. Workers take the epoch and resume point from the loader's
``EpochControl`` when it has one, so persistent workers follow epochs.
In process, windows are gathered into blocks of a ``BlockPool`` that are reused once no batch refers to them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Optional, Sequence

import numpy as np
import pyarrow as pa

from pipeline_opt.delta.snapshot import Snapshot, read_snapshot
from pipeline_opt.loader.blocks import BlockPool, PooledWindow, Scratch, column_layout
from pipeline_opt.loader.errors import LoaderError
from pipeline_opt.loader.plan import RankPlan, plan_rank
from pipeline_opt.loader.prefetch import produce
from pipeline_opt.loader.reader import FileReader
from pipeline_opt.loader.rowfilter import RowFilter
from pipeline_opt.loader.shared import SharedWindow
from pipeline_opt.loader.shuffle import window_permutation
from pipeline_opt.loader.source import FileSource
from pipeline_opt.loader.tensors import (
    batch_tensors,
    is_binary_type,
    is_list_type,
    is_tensor_type,
    tensor_dtype,
    window_arrays,
)
from pipeline_opt.loader.window import WindowReader

if TYPE_CHECKING:
    from torch.utils.data import IterableDataset, get_worker_info
else:
    try:
        from torch.utils.data import IterableDataset, get_worker_info
    except ImportError:  # pragma: no cover - torch is the [torch] extra
        IterableDataset = object
        get_worker_info = None

POSITION_KEY = "__position__"  # (window, batch in window); added only when a DeltaLoader drives the dataset
WINDOW_KEY = "__window__"  # (window, first batch, rows) of a packed window from a worker
# Arrow's pool in a worker process: the workers are the parallelism; more decode threads per worker only contend
WORKER_ARROW_THREADS = 1
DEFAULT_WINDOW_ROWS = 65536
PREFETCH_WINDOWS = 2  # windows decoded ahead per worker


class DeltaDataset(IterableDataset):
    """An ``IterableDataset`` of dicts column name → tensor read from a Delta table at a pinned version.

    ``filter``: a pyarrow ``Expression`` on logical names or DNF tuples ``[(col, op, value), ...]``; files whose
    partition values or min/max stats rule the filter out are skipped without being opened. ``shuffle_buffer``:
    rows shuffled together (the window; memory per worker ≈ window × row width). ``file_cache``: a
    ``FileCache`` (or a dict of its arguments) that keeps remote data files on local disk under a byte budget.
    """

    def __init__(self, path, columns: Optional[Sequence[str]] = None, filter=None, batch_size: int = 1024,
                 shuffle: bool = False, seed: int = 0, version: Optional[int] = None, rank: int = 0,
                 world_size: int = 1, drop_last: bool = False, *, shuffle_buffer: Optional[int] = None,
                 storage_options: Optional[Mapping[str, str]] = None, filesystem=None, file_cache=None,
                 fill_nulls: Optional[Mapping[str, object]] = None):
        _check_ints(batch_size=batch_size, world_size=world_size, seed=seed, rank=rank)
        if batch_size < 1:
            raise LoaderError(f"batch_size must be an integer ≥ 1 (rows per batch), got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise LoaderError(f"need world_size ≥ 1 and 0 ≤ rank < world_size (got rank={rank}, "
                              f"world_size={world_size})")
        self.path = str(path)
        self.batch_size, self.shuffle, self.seed = batch_size, bool(shuffle), seed
        self.rank, self.world_size, self.drop_last = rank, world_size, bool(drop_last)
        self.window_rows = max(int(shuffle_buffer or DEFAULT_WINDOW_ROWS) // batch_size, 1) * batch_size
        self.fill_nulls = dict(fill_nulls or {})
        self.source = FileSource(storage_options=storage_options, filesystem=filesystem, cache=file_cache)
        self._requested_columns, self._filter_arg = columns, filter
        self.epoch = 0
        self._resume: Optional[dict] = None  # window -> first batch, set by DeltaLoader.load_state_dict
        self._tag_positions = False
        self._pack = False  # set by a DeltaLoader with workers: windows leave a worker packed in shared memory
        self._control = None  # the DeltaLoader's EpochControl: what its workers read the epoch and resume from
        self._segments = None  # the DeltaLoader's SegmentPool: the shared memory its workers gather windows into
        self._blocks = BlockPool()
        self._pin(version)

    # -- snapshot ----------------------------------------------------------------------------------------------
    def _pin(self, version: Optional[int]) -> None:
        self.snapshot: Snapshot = read_snapshot(self.path, version, self.source.storage_options)
        self.columns = _resolve_columns(self.path, self.snapshot, self._requested_columns)
        self.row_filter = RowFilter.build(self._filter_arg, self.snapshot)
        self.live_rows = self.row_filter.live_rows(self.snapshot, self._reader)
        if self.source.cache is not None:  # a budget that cannot hold the largest file is refused up front
            self.source.cache.check_fits((self.snapshot.file_uri(f), f.size) for f in self.snapshot.files)

    @property
    def version(self) -> int:
        return self.snapshot.version

    def _reader(self, columns: Optional[Sequence[str]] = None) -> FileReader:
        return FileReader(self.snapshot, self.columns if columns is None else columns, self.row_filter.expression,
                          self.row_filter.columns, source=self.source)

    # -- plan --------------------------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose shuffle the next iteration uses (like ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)

    def plan(self, epoch: Optional[int] = None) -> RankPlan:
        return plan_rank(self.live_rows, batch_size=self.batch_size, window_rows=self.window_rows, rank=self.rank,
                         world_size=self.world_size, drop_last=self.drop_last, shuffle=self.shuffle,
                         seed=self.seed, epoch=self.epoch if epoch is None else epoch)

    def __len__(self) -> int:
        """Batches this rank yields per epoch (the same on every rank)."""
        return self.plan().batches

    def facts(self) -> dict:
        """Plan facts for the current epoch (rows, batches, padded and dropped rows, files skipped)."""
        return {**self.plan().facts(), "version": self.version, "files": len(self.snapshot.files),
                "files_skipped_by_filter": self.row_filter.files_skipped}

    # -- iteration ---------------------------------------------------------------------------------------------
    def work(self, plan: RankPlan) -> list:
        """(window, first batch) still to read this epoch, in plan order."""
        if self._resume is None:
            return [(w.index, 0) for w in plan.windows]
        return [(w.index, self._resume.get(w.index, 0)) for w in plan.windows
                if self._resume.get(w.index, 0) < w.batches]

    def __iter__(self):
        info = get_worker_info() if get_worker_info is not None else None
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        if info is not None:
            pa.set_cpu_count(WORKER_ARROW_THREADS)
            if self._control is not None:  # a persistent worker's copy of the dataset predates this epoch
                self.epoch, self._resume = self._control.read()
        plan = self.plan()
        mine = _split_by_batches(self.work(plan), plan, workers)[worker]
        self._announce(plan, mine, worker, workers)
        reader = WindowReader(self.snapshot, self.columns, self.row_filter.expression, self.row_filter.columns,
                              self.source, big_file_rows=self.window_rows)
        windows = [plan.windows[w] for w, _ in mine]
        pack = self._pack and info is not None
        # a producer thread decodes and shuffles the next windows while this generator cuts the current one into
        # batches (Arrow and NumPy release the GIL); the queue bounds memory at PREFETCH_WINDOWS + 1 windows
        prepared = self._prepared(reader, plan, windows, pack, worker)
        for (window, first), (arrays, shared) in zip(mine, produce(prepared, PREFETCH_WINDOWS)):
            if shared is not None:
                yield self._packed(arrays, shared, plan.windows[window], first)
            else:
                yield from self._batches(arrays, plan.windows[window], first)
            self.source.flush_stats()

    def _announce(self, plan: RankPlan, mine: list, worker: int, workers: int) -> None:
        """Tells the file cache the files this worker reads next: the rest of this epoch, then the next epoch's
        share (the seeded order makes both known now); policies that do not use plans ignore it. One position per
        read: every segment of a small file is a read, a big file's consecutive segments share one."""
        cache = self.source.cache
        if cache is None or not cache.takes_plans:
            return
        later = self.plan(plan.epoch + 1)
        theirs = _split_by_batches([(w.index, 0) for w in later.windows], later, workers)[worker]
        files = self.snapshot.files
        order = [f for p, items in ((plan, mine), (later, theirs))
                 for w, _ in items for f, _, _ in p.windows[w].segments]
        order = [f for i, f in enumerate(order)
                 if not i or f != order[i - 1] or files[f].num_records <= self.window_rows]
        cache.announce(f"{self.snapshot.uri}@{self.version}:seed{self.seed}:rank{self.rank}/{self.world_size}:"
                       f"worker{worker}/{workers}", [self.snapshot.file_uri(files[f]) for f in order])

    def _prepared(self, reader: WindowReader, plan: RankPlan, windows: list, pack: bool, worker: int):
        """(column arrays, shared block or None) of each window's live rows, shuffled when ``shuffle`` is on."""
        scratch, order = Scratch(), Scratch()  # a decimal's or multi-file column's span; the window's row order
        for window, (table, rows) in zip(windows, reader.stream(windows)):
            perm = window_permutation(len(rows), self.seed, plan.epoch, self.rank, window.index, self.shuffle,
                                      out=order.array(len(rows), np.int64))
            dtypes = self._tensor_dtypes(table.schema)
            shared = SharedWindow(dtypes, len(rows), self._segments, worker) if pack else None
            block = shared or PooledWindow(dtypes, len(rows), self._blocks)
            try:
                arrays = window_arrays(table, rows, self.fill_nulls, block.out, order=perm, scratch=scratch)
            finally:
                if shared is not None:
                    shared.written()
            yield arrays, shared

    @staticmethod
    def _tensor_dtypes(schema: pa.Schema) -> dict:
        return {f.name: tensor_dtype(f.type) for f in schema if not is_list_type(f.type)}

    def window_bytes(self) -> int:
        """Bytes of the tensor columns of a full window (what one shared-memory slot must hold)."""
        fields = [self.snapshot.schema.field(c) for c in self.columns]
        return column_layout(self._tensor_dtypes(pa.schema(fields)), self.window_rows)[1]

    def _batches(self, arrays: dict, window, first: int):
        for b in range(first, window.batches):
            batch = batch_tensors(arrays, b * self.batch_size, min((b + 1) * self.batch_size, window.rows))
            if self._tag_positions:
                batch[POSITION_KEY] = (window.index, b)
            yield batch

    def _packed(self, arrays: dict, shared: SharedWindow, window, first: int) -> dict:
        """The window from batch ``first`` on as one packed item: one shared-memory handle crosses per window, and
        the loader cuts the batches (``shared.cut``)."""
        lo, names = first * self.batch_size, list(arrays)
        lists = {n: arrays[n].slice(lo).to_pylist() for n in names if isinstance(arrays[n], pa.Array)}
        packed = shared.pack(names, lo, window.rows, lists)
        packed[WINDOW_KEY] = (window.index, first, window.rows - lo)  # plain ints: no handle of their own
        return packed


def _split_by_batches(items: list, plan: RankPlan, workers: int) -> list:
    """Contiguous runs of ``items`` per worker, balanced by batch count (a worker may get none)."""
    weights = np.array([plan.windows[w].batches - first for w, first in items], dtype=np.int64)
    total = max(int(weights.sum()), 1)
    starts = np.cumsum(weights) - weights
    owner = np.minimum(starts * workers // total, workers - 1)
    return [[item for item, o in zip(items, owner) if o == i] for i in range(workers)]


def _check_ints(**values) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise LoaderError(f"{name} must be an integer, got {v!r}")


def _resolve_columns(path: str, snapshot: Snapshot, columns: Optional[Sequence[str]]) -> list:
    names = snapshot.schema.names
    if columns is None:
        return [n for n in names if is_tensor_type(snapshot.schema.field(n).type)]
    if isinstance(columns, str):
        columns = [columns]
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise LoaderError(f"{path}: unknown column(s) {unknown}; the table has {names}")
    types = {c: snapshot.schema.field(c).type for c in columns}
    raw = [c for c in columns if is_binary_type(types[c])]
    if raw:
        raise LoaderError(f"column(s) {raw} of {path} are binary ({[str(types[c]) for c in raw]}): the loader has "
                          "no decoder that turns bytes into tensors; leave them out of columns")
    bad = [c for c in columns if not (is_tensor_type(types[c]) or is_list_type(types[c]))]
    if bad:
        raise LoaderError(f"column(s) {bad} of {path} have types a batch cannot hold "
                          f"({[str(types[c]) for c in bad]}); a batch holds integer, floating, boolean, decimal, "
                          "date, timestamp and duration columns as tensors and string columns as lists")
    return list(dict.fromkeys(columns))
