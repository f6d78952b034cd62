"""``DeltaDataset``: a Delta snapshot as a sharded, shuffled, resumable stream of tensor batches.

Invariants: the snapshot is pinned when the dataset is built (``version`` or the latest), so a table that changes
during training does not change what an epoch reads; each epoch, every live row is yielded exactly once across all
ranks × workers (plus ``padded_rows`` repeats when ``drop_last=False``); every rank yields ``len(dataset)`` batches;
batch contents are a pure function of (snapshot, seed, epoch, rank, batch number), independent of worker count.
Worker ``i`` of ``n`` reads a contiguous run of the rank's windows, so no two workers decode the same rows.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Optional, Sequence

import numpy as np

from pipeline_opt.delta.snapshot import Snapshot, read_snapshot
from pipeline_opt.loader.errors import LoaderError
from pipeline_opt.loader.plan import RankPlan, plan_rank
from pipeline_opt.loader.prefetch import produce
from pipeline_opt.loader.reader import FileReader
from pipeline_opt.loader.rowfilter import RowFilter
from pipeline_opt.loader.shuffle import window_permutation
from pipeline_opt.loader.source import FileSource
from pipeline_opt.loader.tensors import batch_tensors, is_list_type, is_tensor_type, window_arrays
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
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise LoaderError(f"need batch_size ≥ 1, world_size ≥ 1 and 0 ≤ rank < world_size "
                              f"(got batch_size={batch_size}, rank={rank}, world_size={world_size})")
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
        plan = self.plan()
        mine = _split_by_batches(self.work(plan), plan, workers)[worker]
        self._announce(plan, mine, worker, workers)
        reader = WindowReader(self.snapshot, self.columns, self.row_filter.expression, self.row_filter.columns,
                              self.source, big_file_rows=self.window_rows)
        windows = [plan.windows[w] for w, _ in mine]
        # a producer thread decodes and shuffles the next windows while this generator cuts the current one into
        # batches (Arrow and NumPy release the GIL); the queue bounds memory at PREFETCH_WINDOWS + 1 windows
        for (window, first), arrays in zip(mine, produce(self._prepared(reader, plan, windows), PREFETCH_WINDOWS)):
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

    def _prepared(self, reader: WindowReader, plan: RankPlan, windows: list):
        """Column arrays of each window's live rows, shuffled when ``shuffle`` is on."""
        for window, (table, rows) in zip(windows, reader.stream(windows)):
            perm = window_permutation(len(rows), self.seed, plan.epoch, self.rank, window.index, self.shuffle)
            yield window_arrays(table, rows if perm is None else rows[perm], self.fill_nulls)

    def _batches(self, arrays: dict, window, first: int):
        import torch

        for b in range(first, window.batches):
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, window.rows)
            batch = batch_tensors(arrays, lo, hi)
            if self._tag_positions:
                batch[POSITION_KEY] = torch.tensor([window.index, b], dtype=torch.int64)
            yield batch


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
    bad = [c for c in columns if not (is_tensor_type(snapshot.schema.field(c).type)
                                      or is_list_type(snapshot.schema.field(c).type))]
    if bad:
        raise LoaderError(f"column(s) {bad} have types a batch cannot hold "
                          f"({[str(snapshot.schema.field(c).type) for c in bad]})")
    return list(dict.fromkeys(columns))
