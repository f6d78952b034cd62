"""``DeltaLoader``: iterates a ``DeltaDataset`` with worker processes and saves/restores exact mid-epoch state.

Invariants: each yielded batch is counted against the window it came from (workers tag batches; the tag is removed
before the caller sees the batch), so ``state_dict()`` records exactly which batches were delivered whatever order
the workers produced them in; ``load_state_dict`` re-pins the dataset to the saved table version and the next
iteration yields exactly the remaining batches of that epoch, with any ``num_workers``. Workers never receive a
``DeltaTable`` (delta-rs panics in a forked child that uses an inherited one) — only the plain snapshot. While it
iterates, a reader lease beside the table (``lease=True``) keeps our VACUUM from deleting the pinned version's files.
With ``persistent_workers=True`` the workers start once and serve every later epoch (the epoch and resume point
reach them through an ``EpochControl``); re-pinning another version in ``load_state_dict`` starts fresh ones.
Workers gather windows into the slots of a ``SegmentPool`` made with them; the loader hands a slot back once no
batch of its window is referenced, so the same shared memory carries window after window, epoch after epoch.
"""
from __future__ import annotations

import gc
import multiprocessing as mp
import sys
from typing import Optional

from pipeline_opt.loader.control import EpochControl
from pipeline_opt.loader.dataset import POSITION_KEY, PREFETCH_WINDOWS, WINDOW_KEY, DeltaDataset
from pipeline_opt.loader.errors import LoaderError
from pipeline_opt.loader.lease import ReaderLease
from pipeline_opt.loader.segments import SegmentPool
from pipeline_opt.loader.shared import cut, unpack
from pipeline_opt.loader.source import STAT_NAMES
from pipeline_opt.loader.state import check_state, make_state, resume_progress


class DeltaLoader:
    """Batches of a ``DeltaDataset``: ``num_workers`` processes, at least ``prefetch_batches`` ready batches per
    worker (workers hand over whole windows, so this rounds up to whole windows).

    ``len(loader)`` is the number of batches per epoch on this rank (equal on all ranks). Iterating runs one epoch
    (the rest of it after ``load_state_dict``) and then advances the dataset's epoch, so the next pass reshuffles.
    """

    def __init__(self, dataset: DeltaDataset, num_workers: int = 0, pin_memory: bool = False,
                 prefetch_batches: int = 2, multiprocessing_context: Optional[str] = None, timeout: float = 0,
                 lease: bool = True, persistent_workers: bool = False):
        if not isinstance(dataset, DeltaDataset):
            raise LoaderError(f"DeltaLoader needs a DeltaDataset, got {type(dataset).__name__}")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise LoaderError(f"num_workers must be an integer ≥ 0, got {num_workers!r}")
        if not isinstance(prefetch_batches, int) or prefetch_batches < 1:
            raise LoaderError(f"prefetch_batches must be an integer ≥ 1, got {prefetch_batches!r}")
        _check_workers(dataset, num_workers)
        self.dataset, self.num_workers, self.pin_memory = dataset, num_workers, pin_memory
        self.prefetch_batches, self.timeout, self.lease = prefetch_batches, timeout, bool(lease)
        self.multiprocessing_context = multiprocessing_context or ("fork" if sys.platform == "linux" else "spawn")
        self._progress: dict = {}
        self._batches_done = 0
        self._epoch = dataset.epoch
        self._stats = None
        self.persistent_workers = bool(persistent_workers) and num_workers > 0
        # (torch DataLoader or None, EpochControl or None, SegmentPool or None), kept if persistent
        self._workers: Optional[tuple] = None

    def __len__(self) -> int:
        return len(self.dataset)

    def _torch_loader(self):
        from torch.utils.data import DataLoader

        kwargs = {}
        if self.num_workers:
            kwargs = {"prefetch_factor": self._prefetch_windows(),
                      "multiprocessing_context": self.multiprocessing_context, "timeout": self.timeout,
                      "worker_init_fn": _ignore_interrupts, "persistent_workers": self.persistent_workers}
        return DataLoader(self.dataset, batch_size=None, num_workers=self.num_workers, pin_memory=self.pin_memory,
                          **kwargs)

    def _prefetch_windows(self) -> int:
        """Windows handed over ahead per worker: ``prefetch_batches`` rounded up to whole windows."""
        return -(-self.prefetch_batches // max(self.dataset.window_rows // self.dataset.batch_size, 1))

    def _segments(self, context) -> Optional[SegmentPool]:
        """The workers' shared-memory slots: enough for the windows one worker has in flight (queued in its read-ahead,
        being gathered, handed to torch, being cut here, and the one whose last batch the caller still holds), and
        one to spare. None in process, and under ``pin_memory``, where torch's pinning thread copies each window's
        block. Slots no window needs cost no memory: a page of shared memory is allocated when first written."""
        nbytes = self.dataset.window_bytes()
        if not self.num_workers or self.pin_memory or not nbytes:
            return None
        slots = PREFETCH_WINDOWS + 1 + self._prefetch_windows() + 2 + 1
        return SegmentPool(context, self.num_workers, slots, nbytes)

    def _items(self):
        """This iteration's batches (in process) or packed windows (workers). The counters and the epoch control
        are in place before any worker starts; persistent workers are started once and then only told the epoch."""
        ds = self.dataset
        if self._workers is None or not self.persistent_workers:
            context = mp.get_context(self.multiprocessing_context)
            self._stats = context.Array("q", len(STAT_NAMES))
            control = EpochControl(context, len(ds.plan().windows)) if self.num_workers else None
            torch_loader = self._torch_loader() if self.num_workers or self.pin_memory else None
            self._workers = (torch_loader, control, self._segments(context))
        else:
            self._stats[:] = [0] * len(STAT_NAMES)
            if self._workers[2] is not None:
                self._workers[2].reclaim()
        torch_loader, control, segments = self._workers
        ds.source.shared, ds._control, ds._segments = self._stats, control, segments
        if control is not None:
            control.publish(ds.epoch, ds._resume)
        if torch_loader is None:  # the same batches, without torch's per-batch wrapping
            return iter(ds)
        return _started(torch_loader)

    def _delivered(self, items):
        """(window, batch number, batch) of each item: a packed window is unpacked and cut into its batches."""
        pool = self._workers[2] if self._workers is not None else None
        for item in items:
            if WINDOW_KEY in item:
                if pool is not None:  # a slot whose batches were all dropped can take the next window
                    pool.hand_back()
                window, first, rows = (int(v) for v in item.pop(WINDOW_KEY))
                for k, batch in enumerate(cut(unpack(item, pool), rows, self.dataset.batch_size)):
                    yield window, first + k, batch
            else:
                window, index = (int(v) for v in item.pop(POSITION_KEY))
                yield window, index, item

    def __iter__(self):
        ds = self.dataset
        ds.set_epoch(self._epoch)
        ds._resume = dict(self._progress) if self._progress else None
        ds._tag_positions, ds._pack = True, self.num_workers > 0
        lease = ReaderLease(ds.path, ds.version, ds.source.storage_options) if self.lease else None
        try:
            for window, index, batch in self._delivered(_worker_errors(self._items())):
                self._progress[window] = max(self._progress.get(window, 0), index + 1)
                self._batches_done += 1
                if lease is not None:
                    lease.renew()
                yield batch
        finally:
            ds._tag_positions, ds._pack, ds._resume, ds.source.shared = False, False, None, None
            ds._control = ds._segments = None
            ds.source.flush_stats()
            if lease is not None:
                lease.release()
        self._epoch += 1
        self._progress, self._batches_done = {}, 0

    @property
    def epoch(self) -> int:
        return self._epoch

    def io_stats(self) -> dict:
        """Files opened, remote bytes fetched and file-cache hits/misses of the last (or current) iteration."""
        if self._stats is None:
            return dict.fromkeys(STAT_NAMES, 0)
        return {name: int(self._stats[i]) for i, name in enumerate(STAT_NAMES)}

    def state_dict(self) -> dict:
        """Small JSON-able state: table, version, plan settings, epoch and which windows/batches are done."""
        return make_state(self.dataset, self._epoch, self._progress, self._batches_done)

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` on the next iteration (same table; the dataset is re-pinned to its version)."""
        check_state(self.dataset, state)
        if state["version"] != self.dataset.version:
            self.dataset._pin(int(state["version"]))
            self._workers = None  # persistent workers hold the old snapshot: the next iteration starts new ones
        self._epoch = int(state["epoch"])
        self._progress = resume_progress(state)
        self._batches_done = int(state["batches_done"])


def _check_workers(dataset: DeltaDataset, num_workers: int) -> None:
    """Workers split a rank's windows, and a big file spans several windows: a worker beyond both the files with
    rows and the windows has nothing to read."""
    files = sum(1 for rows in dataset.live_rows if rows > 0)
    windows = len(dataset.plan().windows)
    most = max(files, windows, 1)
    if num_workers > most:
        raise LoaderError(f"num_workers={num_workers} is more than {dataset.path} at version {dataset.version} can "
                          f"keep busy ({files} data file(s) with rows, {windows} window(s) of rows on this rank): "
                          f"use num_workers ≤ {most}")


def _started(loader):
    """``iter(loader)``, which forks the workers, with the objects alive now frozen out of the garbage collector
    while it forks: a forked worker's collections then never walk (and copy-on-write) the parent's whole heap.
    The parent's collector is unfrozen at once, so it behaves as before."""
    if not loader.num_workers:
        return iter(loader)
    gc.freeze()
    try:
        return iter(loader)
    finally:
        gc.unfreeze()


def _worker_errors(batches):
    """Batches, with a worker's ``LoaderError`` re-raised as its own one line (torch wraps it in a traceback text)."""
    try:
        yield from batches
    except LoaderError as e:
        text = str(e)
        if "Original Traceback" not in text:
            raise
        last = text.strip().splitlines()[-1]
        raise type(e)(last.split(": ", 1)[1] if ": " in last else last) from None


def _ignore_interrupts(_worker_id: int) -> None:
    """Ctrl-C reaches every process of the terminal's group: a worker leaves it to the loader's process, which stops
    the workers when its iteration ends. A batch handed over at that moment breaks the connection that passes its
    shared-memory handle; the worker's handle-serving thread would print that as a traceback, so a broken
    connection ends quietly there (any other error still prints)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.excepthook = _quiet_broken_connections(sys.excepthook)


def _quiet_broken_connections(previous):
    def hook(kind, value, tb):
        if not issubclass(kind, (ConnectionError, EOFError)):
            previous(kind, value, tb)
    return hook
