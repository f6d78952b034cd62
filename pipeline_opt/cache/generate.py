"""Generated product workloads: loaders reading tables epoch after epoch, scheduled scans, ad-hoc reads.

Parameters (``WorkloadSpec``): tables (file count, log-normal file sizes), loaders (table, seed, epochs, speed —
several may share a table), scheduled scans (a table scanned in storage order every ``every`` requests: nightly
health/compaction, Spark jobs on a schedule; ``runs=1`` and ``announce=False`` is a one-off query), and a share of
ad-hoc requests (Zipf over some tables' files, announced by nobody).

What each source announces, as the product would: a loader, at the start of each epoch, that epoch's file order
and the next one's (it is seeded; ``announced_seed`` different from ``seed`` makes the plan wrong on purpose); the
schedule, one period before each run, that run's scan and when it starts.

Invariants: a pure function of the spec (seeded ``numpy`` generators only); file ids are dense, table by table;
the streams interleave at random in proportion to their ``speed``; a scheduled run waits while the previous run
of its schedule still reads; the workload ends when every loader has read all its epochs (scans that started by
then finish).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from pipeline_opt.cache.workload import Announcement, Workload

Order = Callable[[int, int, int], np.ndarray]  # (files, seed, epoch) -> permutation


@dataclass
class TableSpec:
    name: str
    files: int
    median_bytes: int = 32 * 2**20
    sigma: float = 0.5
    sizes: Optional[list[int]] = None  # exact file sizes (e.g. from a Delta log) instead of the distribution


@dataclass
class LoaderSpec:
    table: str
    seed: int = 0
    epochs: int = 4
    speed: float = 1.0
    announce: bool = True
    announced_seed: Optional[int] = None  # the seed the plan claims (None: the true one)


@dataclass
class ScanSpec:
    table: str
    every: int  # requests between the starts of two runs
    first: Optional[int] = None  # start of the first run (default: ``every``)
    runs: Optional[int] = None  # None: as long as the loaders run
    speed: float = 4.0
    announce: bool = True


@dataclass
class WorkloadSpec:
    """A workload; ``conf``-style YAML of these fields loads with ``pipeline_opt.config.build``."""

    name: str
    tables: list[TableSpec]
    loaders: list[LoaderSpec] = field(default_factory=list)
    scans: list[ScanSpec] = field(default_factory=list)
    adhoc_share: float = 0.0
    adhoc_tables: list[str] = field(default_factory=list)
    adhoc_alpha: float = 1.0
    seed: int = 0

    def validate(self) -> None:
        names = [t.name for t in self.tables]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"tables: need distinct names, got {names}")
        for what, table in [*(("loaders", x.table) for x in self.loaders), *(("scans", x.table) for x in self.scans),
                            *(("adhoc_tables", t) for t in self.adhoc_tables)]:
            if table not in names:
                raise ValueError(f"{what}: unknown table {table!r}; tables are {names}")
        if not self.loaders:
            raise ValueError("loaders: at least one loader is needed (the workload lasts while loaders read)")
        if not 0 <= self.adhoc_share < 1 or any(t.files < 1 for t in self.tables if t.sizes is None):
            raise ValueError("adhoc_share must be in [0, 1) and every table needs at least one file")
        if any(s.every < 1 for s in self.scans):
            raise ValueError("scans: every must be at least 1")


def seeded_order(files: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0x10AD]).permutation(files)


def generate(spec: WorkloadSpec, order: Order = seeded_order) -> Workload:
    rng = np.random.default_rng([spec.seed, 0xCAC4E])
    ranges, sizes, tables = _files(spec, rng)
    sources: list = []
    loaders = [_Loader(spec.loaders[j], j, ranges[spec.loaders[j].table], order, sources)
               for j in range(len(spec.loaders))]
    schedules = [_Schedule(s, ranges[s.table], sources) for s in spec.scans]
    streams: list = list(loaders)
    adhoc = _adhoc_keys(spec, ranges)
    keys: list = []
    srcs: list = []
    anns: list = []
    while any(not s.done for s in streams):
        now = len(keys)
        if any(not s.done for s in loaders):
            for sched in schedules:
                sched.tick(now, anns, streams)
        for s in loaders:
            s.announce_epoch(now, anns)
        if adhoc is not None and rng.random() < spec.adhoc_share:
            keys.append(int(adhoc[min(int(rng.zipf(spec.adhoc_alpha + 1)) - 1, len(adhoc) - 1)]))
            srcs.append(-1)
            continue
        active = [s for s in streams if not s.done]
        weights = np.cumsum([s.speed for s in active])
        s = active[min(int(np.searchsorted(weights, rng.random() * weights[-1], side="right")), len(active) - 1)]
        keys.append(s.next_key())
        srcs.append(s.source)
    k = np.array(keys, np.int64)
    names = [f"{t.name}/part-{i:05d}.parquet" for t in spec.tables for i in range(ranges[t.name][1])]
    return Workload(spec.name, np.arange(len(k), dtype=np.uint64), k, sizes[k], [t.name for t in spec.tables],
                    tables, names, sources, np.array(srcs, np.int64), anns, sizes)


def _files(spec: WorkloadSpec, rng: np.random.Generator) -> tuple:
    """{table: (first file id, file count)}, the size of every file, the table index of every file."""
    ranges, sizes, tables, start = {}, [], [], 0
    for i, t in enumerate(spec.tables):
        if t.sizes is not None:
            s = np.asarray(t.sizes, np.int64)
        else:
            s = np.maximum(rng.lognormal(np.log(t.median_bytes), t.sigma, t.files), 1024).astype(np.int64)
        ranges[t.name] = (start, len(s))
        start += len(s)
        sizes.append(s)
        tables.append(np.full(len(s), i, np.int64))
    return ranges, np.concatenate(sizes), np.concatenate(tables)


class _Stream:
    """A queue of keys one source will request (``queue`` is reversed: the next key is last)."""

    speed = 1.0
    source = -1
    done = False

    def __init__(self) -> None:
        self.queue: list = []

    def next_key(self) -> int:
        key = self.queue.pop()
        self.done = not self.queue and self._exhausted()
        return key

    def _exhausted(self) -> bool:
        return True


class _Loader(_Stream):
    def __init__(self, spec: LoaderSpec, j: int, files: tuple, order: Order, sources: list):
        super().__init__()
        self.spec, self.order, self.speed, self.files = spec, order, spec.speed, files
        self.source = len(sources)
        sources.append(f"loader{j}:{spec.table}:seed{spec.seed}")
        self.epoch = -1
        self.done = spec.epochs <= 0

    def _keys(self, seed: int, epoch: int) -> list:
        start, n = self.files
        return [start + int(i) for i in self.order(n, seed, epoch)]

    def announce_epoch(self, now: int, anns: list) -> None:
        if self.queue or self.done:
            return
        self.epoch += 1
        self.queue = self._keys(self.spec.seed, self.epoch)[::-1]
        if self.spec.announce:
            seed = self.spec.seed if self.spec.announced_seed is None else self.spec.announced_seed
            plan = self._keys(seed, self.epoch)
            if self.epoch + 1 < self.spec.epochs:
                plan += self._keys(seed, self.epoch + 1)
            anns.append(Announcement(now, self.source, plan))

    def _exhausted(self) -> bool:
        return self.epoch + 1 >= self.spec.epochs


class _Scan(_Stream):
    def __init__(self, keys: list, source: int, speed: float):
        super().__init__()
        self.queue, self.source, self.speed = keys[::-1], source, speed


class _Schedule:
    """Starts a scan stream at each run's start; announces each run one period ahead."""

    def __init__(self, spec: ScanSpec, files: tuple, sources: list):
        self.spec, self.sources = spec, sources
        self.keys = list(range(files[0], files[0] + files[1]))
        self.run = 0
        self.ids: dict = {}
        self.last: Optional[_Scan] = None

    def _start(self, run: int) -> int:
        first = self.spec.every if self.spec.first is None else self.spec.first
        return first + run * self.spec.every

    def _source(self, run: int) -> int:
        if run not in self.ids:
            self.ids[run] = len(self.sources)
            self.sources.append(f"scan:{self.spec.table}#{run}")
        return self.ids[run]

    def _scheduled(self, run: int) -> bool:
        return self.spec.runs is None or run < self.spec.runs

    def tick(self, now: int, anns: list, streams: list) -> None:
        """Announce runs one period ahead; start a due run unless the previous one still runs (then it waits)."""
        spec = self.spec
        for run in (self.run, self.run + 1):
            start = self._start(run)
            if spec.announce and self._scheduled(run) and now == max(0, start - spec.every):
                anns.append(Announcement(now, self._source(run), list(self.keys), start - now))
        if self._scheduled(self.run) and now >= self._start(self.run) and (self.last is None or self.last.done):
            self.last = _Scan(self.keys, self._source(self.run), spec.speed)
            streams.append(self.last)
            self.run += 1


def _adhoc_keys(spec: WorkloadSpec, ranges: dict) -> Optional[np.ndarray]:
    if spec.adhoc_share <= 0 or not spec.adhoc_tables:
        return None
    keys = np.concatenate([np.arange(ranges[t][0], ranges[t][0] + ranges[t][1]) for t in spec.adhoc_tables])
    return np.random.default_rng([spec.seed, 0xAD]).permutation(keys)
