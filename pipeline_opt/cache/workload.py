"""Product workloads as traces: file-level requests with sizes and tables, plus the plans announced before them.

A ``Workload`` is a ``Trace`` (one request per file read; keys are dense file ids, sizes in bytes) that also knows
each file's table, which source made each request, and the announcements (plans) that sources made, each placed
before a request index. The simulator replays the announcements to policies that take plans
(``pipeline_opt.cache.plans``) and ignores them for the others.

File format (JSON lines, ``.workload.jsonl``): a header ``{"format": "pipeline-opt-workload", "version": 1,
"name", "tables": [...], "sources": [...]}``; one ``{"files": [[table, size, name], ...]}`` line (file id = index;
``name`` may be ""); then events in order: ``{"read": source, "keys": [...]}`` (a run of requests by one source,
``-1`` = nobody announced it) and ``{"announce": source, "keys": [...], "start_after": n}``.

Invariants: key ids index ``files``; every size is in ``1..MAX_SIZE``; announcements refer to known files and
sources; reading a corrupt file (not UTF-8, truncated, wrong JSON shapes or types) raises ``TraceError`` naming the
file and line; ``write`` then ``read_workload`` gives an equal workload.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

import numpy as np

from pipeline_opt.cache.trace import Trace, TraceError
from pipeline_opt.units import MAX_SIZE

FORMAT, VERSION = "pipeline-opt-workload", 1


@dataclass
class Announcement:
    at: int  # made just before request ``at``
    source: int
    keys: list
    start_after: int = 0


@dataclass
class Workload(Trace):
    table_names: list = field(default_factory=list)
    file_tables: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # table index per file id
    file_names: list = field(default_factory=list)
    source_names: list = field(default_factory=list)
    sources: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # source per request, -1 = none
    announcements: list = field(default_factory=list)
    file_bytes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # size per file id

    @property
    def file_sizes(self) -> np.ndarray:
        """Size of every file id, requested or not."""
        if len(self.file_bytes) == len(self.file_tables):
            return self.file_bytes
        out = np.ones(len(self.file_tables), np.int64)
        out[self.keys] = self.sizes
        return out

    def announcements_at(self) -> dict:
        """Request index -> the announcements made just before it, in order."""
        out: dict = {}
        for a in self.announcements:
            out.setdefault(a.at, []).append(a)
        return out

    def table_of(self, key: int) -> str:
        return self.table_names[int(self.file_tables[key])]

    def without_plans(self) -> "Workload":
        """The same requests with no announcement (what a cache sees when nobody announces)."""
        return Workload(self.name + " (no plans)", self.times, self.keys, self.sizes, self.table_names,
                        self.file_tables, self.file_names, self.source_names, self.sources, [], self.file_bytes)


def write_workload(w: Workload, path: str | Path) -> Path:
    p = Path(path)
    sizes = w.file_sizes
    with p.open("w") as f:
        f.write(json.dumps({"format": FORMAT, "version": VERSION, "name": w.name, "tables": w.table_names,
                            "sources": w.source_names}) + "\n")
        names = w.file_names or [""] * len(sizes)
        f.write(json.dumps({"files": [[int(t), int(s), n] for t, s, n in zip(w.file_tables, sizes, names)]}) + "\n")
        events = sorted(w.announcements, key=lambda a: a.at)
        i, n = 0, len(w.keys)
        for a in [*events, None]:
            stop = n if a is None else a.at
            while i < stop:  # runs of requests by one source, up to the next announcement
                j = i + 1
                while j < stop and w.sources[j] == w.sources[i]:
                    j += 1
                f.write(json.dumps({"read": int(w.sources[i]), "keys": w.keys[i:j].tolist()}) + "\n")
                i = j
            if a is not None:
                f.write(json.dumps({"announce": a.source, "keys": [int(k) for k in a.keys],
                                    "start_after": a.start_after}) + "\n")
    return p


def read_workload(path: str | Path) -> Workload:
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"{p}: workload file not found")
    try:
        with p.open(encoding="utf-8") as f:
            lines = enumerate(f, 1)
            head = _line(p, lines, "header")
            if head.get("format") != FORMAT or head.get("version") != VERSION:
                raise TraceError(f"{p}: line 1 is not a {FORMAT} version {VERSION} header")
            tables, sources = _names(p, head, "tables"), _names(p, head, "sources")
            ft, fs, names = _files(p, _line(p, lines, "file list").get("files"), len(tables))
            keys, srcs, anns = _events(p, lines, len(fs), len(sources))
    except UnicodeDecodeError as e:
        raise TraceError(f"{p}: not UTF-8 text (byte {e.start} of a read block)") from None
    k = np.array(keys, np.int64)
    if not len(k):
        raise TraceError(f"{p}: no read events")
    return Workload(str(head.get("name", p.name)), np.arange(len(k), dtype=np.uint64), k, fs[k], tables, ft,
                    names if any(names) else [], sources, np.array(srcs, np.int64), anns, fs)


def read_record(path: str | Path, name: str = "") -> Workload:
    """The workload a shared cache recorded (``FileCache(record=...)``): its requests, tables and announcements.

    File ids are dense in order of first request (sizes and tables from that request); every request is
    attributed to nobody (a cache does not know which reader asked); announcements keep their sources and drop files
    that were never requested (their size is unknown); a withdrawal is an empty announcement."""
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"{p}: record file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise TraceError(f"{p}: not UTF-8 text (byte {e.start})") from None
    ops = [_parse_op(p, n, line) for n, line in enumerate(text.splitlines(), 1)]
    ids: dict = {}
    tables: dict = {}
    file_tables, file_sizes = [], []
    for op in ops:
        if op[0] == "r" and op[1] not in ids:
            ids[op[1]] = len(ids)
            file_sizes.append(op[2])
            file_tables.append(tables.setdefault(op[3] or "", len(tables)))
    if not ids:
        raise TraceError(f"{p}: no requests recorded")
    sources: dict = {}
    keys: list = []
    anns: list = []
    for op in ops:
        if op[0] == "r":
            keys.append(ids[op[1]])
        else:
            listed = [ids[k] for k in op[2] if k in ids] if op[0] == "a" else []
            anns.append(Announcement(len(keys), sources.setdefault(op[1], len(sources)), listed,
                                     op[3] if op[0] == "a" else 0))
    k = np.array(keys, np.int64)
    fs = np.array(file_sizes, np.int64)
    return Workload(name or p.name, np.arange(len(k), dtype=np.uint64), k, fs[k], list(tables),
                    np.array(file_tables, np.int64), [], list(sources), np.full(len(k), -1, np.int64), anns, fs)


def _parse_op(p: Path, n: int, line: str) -> list:
    try:
        op = json.loads(line)
    except json.JSONDecodeError as err:
        raise TraceError(f"{p}: line {n} is not JSON: {err.msg}") from None
    ok = isinstance(op, list) and op and (
        (op[0] == "r" and len(op) == 4 and isinstance(op[1], str) and _whole(op[2]) and 0 < op[2] <= MAX_SIZE
         and (op[3] is None or isinstance(op[3], str)))
        or (op[0] == "a" and len(op) == 4 and isinstance(op[1], str) and isinstance(op[2], list)
            and all(isinstance(k, str) for k in op[2]) and _whole(op[3]) and op[3] >= 0)
        or (op[0] == "w" and len(op) == 2 and isinstance(op[1], str)))
    if not ok:
        raise TraceError(f"{p}: line {n} is not a cache operation: {line[:80]!r}")
    return op


def _events(p: Path, lines, n_files: int, n_sources: int) -> tuple:
    keys: list = []
    srcs: list = []
    anns: list = []
    for n, line in lines:
        e = _parse(p, n, line)
        ids = e.get("keys")
        if not isinstance(ids, list) or not all(_whole(x) and 0 <= x < n_files for x in ids):
            raise TraceError(f"{p}: line {n}: 'keys' must be file ids in 0..{n_files - 1}")
        source = e.get("read", e.get("announce"))
        if not _whole(source) or not -1 <= source < n_sources or ("announce" in e and source < 0):
            raise TraceError(f"{p}: line {n}: unknown source {source!r}")
        if "read" in e:
            keys.extend(ids)
            srcs.extend([source] * len(ids))
        else:
            start_after = e.get("start_after", 0)
            if not _whole(start_after) or start_after < 0:
                raise TraceError(f"{p}: line {n}: start_after {start_after!r} must be a whole number >= 0")
            anns.append(Announcement(len(keys), source, ids, start_after))
    return keys, srcs, anns


def _names(p: Path, head: dict, key: str) -> list:
    names = head.get(key, [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise TraceError(f"{p}: line 1: {key!r} must be a list of names, got {str(names)[:60]!r}")
    return names


def _files(p: Path, files, n_tables: int) -> tuple:
    """(table per file, size per file, names) of line 2's ``[[table, size, name], ...]``."""
    if not isinstance(files, list) or not files:
        raise TraceError(f"{p}: line 2 must hold a non-empty 'files' list")
    for i, f in enumerate(files):
        if not (isinstance(f, list) and len(f) == 3 and _whole(f[0]) and _whole(f[1]) and isinstance(f[2], str)):
            raise TraceError(f"{p}: line 2: file {i} is {str(f)[:60]}; every file must be [table, size, name]")
        if not (0 <= f[0] < n_tables and 0 < f[1] <= MAX_SIZE):
            raise TraceError(f"{p}: line 2: file {i} has size <= 0 (or above {MAX_SIZE}, 1 PiB) or an unknown table "
                             f"{f[0]} (of {n_tables})")
    return (np.array([f[0] for f in files], np.int64), np.array([f[1] for f in files], np.int64),
            [f[2] for f in files])


def _whole(x) -> TypeGuard[int]:
    """A JSON integer (``true`` is an int to Python, not to a file format)."""
    return type(x) is int


def _line(p: Path, lines, what: str) -> dict:
    n, line = next(lines, (0, ""))
    if not line:
        raise TraceError(f"{p}: missing {what}")
    return _parse(p, n, line)


def _parse(p: Path, n: int, line: str) -> dict:
    try:
        e = json.loads(line)
    except json.JSONDecodeError as err:
        raise TraceError(f"{p}: line {n} is not JSON: {err.msg}") from None
    if not isinstance(e, dict):
        raise TraceError(f"{p}: line {n} is not a JSON object")
    return e
