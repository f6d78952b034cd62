"""One cache policy shared by every process that uses one folder: a JSON snapshot plus a journal of operations.

Each process keeps the policy in memory. The folder holds ``.state.json`` (a snapshot: the policy encoded by
``cache.state``, and the journal it continues with) and that journal (``.journal-<id>.jsonl``, one JSON array per
operation: ``["r", key, size, table]`` a request, ``["a", source, keys, start_after]`` an announcement,
``["w", source]`` a withdrawal). Under the folder's lock a process replays the operations others appended since
its last look, applies its own and appends them; every ``compact_every`` operations the snapshot is rewritten and
the journal restarts. With ``record``, every operation is also appended to that file, which is never compacted:
the request stream of a real run, which ``cache.workload.read_record`` turns into a replayable trace.

Invariants:
- policies are deterministic, so every process that replayed the same operations holds the same policy: one
  budget, one eviction order, across workers and epochs;
- nothing read from the folder is trusted: the snapshot is decoded by ``cache.state`` (no code runs) and checked,
  every journal line is checked (key format, sizes, types); if anything fails, the state is rebuilt from the
  folder's contents (``contents()``: the cached objects actually present), logged as one warning line;
- after every session the objects present are exactly the policy's: evicted keys are passed to ``remove``, and a
  rebuild or compaction removes objects the policy does not hold.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Optional

from pipeline_opt.cache import plans, policies
from pipeline_opt.cache.state import StateError, check, decode, encode
from pipeline_opt.units import MAX_SIZE

log = logging.getLogger(__name__)
FORMAT, VERSION = "pipeline-opt-shared-cache", 1
KEY = re.compile(r"^[0-9a-f]{40}$")
COMPACT_EVERY = 2000


class SharedPolicy:
    """``with shared.session() as s: s.request(key, size)`` — the folder's policy, current and persisted."""

    def __init__(self, directory: Path, name: str, capacity_bytes: int, options: dict,
                 contents: Callable[[], Iterable[tuple]], remove: Callable[[str], None],
                 compact_every: int = COMPACT_EVERY, record: Optional[Path] = None):
        self.directory, self.name, self.capacity_bytes = Path(directory), name, int(capacity_bytes)
        self.options, self.contents, self.remove = dict(options), contents, remove
        self.compact_every = compact_every
        self.record = Path(record) if record is not None else None  # every operation, never compacted
        self.policy: Optional[policies.CachePolicy] = None
        self._seen: Optional[tuple] = None  # identity of the snapshot the in-memory policy came from
        self._journal = ""
        self._offset = 0  # bytes of the journal already applied
        self._ops = 0

    @property
    def _snapshot(self) -> Path:
        return self.directory / ".state.json"

    def _journal_path(self, journal: str) -> Path:
        return self.directory / f".journal-{journal}.jsonl"

    @contextmanager
    def session(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._sync()
            yield self
            if self._ops >= self.compact_every:
                self._write_snapshot()

    # -- operations (inside a session) --------------------------------------------------------------------------
    def request(self, key: str, size: int, table: Optional[str] = None) -> bool:
        hit = self._guarded(lambda: self._apply_request(key, int(size), table, own=True))
        self._append(["r", key, int(size), table])
        return hit

    def announce(self, source: str, keys: list, start_after: int = 0) -> int:
        kept = self._guarded(lambda: plans.announce(self._current, source, keys, start_after))
        self._append(["a", source, keys, int(start_after)])
        return kept

    def withdraw(self, source: str) -> None:
        self._guarded(lambda: plans.withdraw(self._current, source))
        self._append(["w", source])

    def _guarded(self, apply: Callable):
        """Runs ``apply`` on the policy; a policy that breaks on it held inconsistent state: rebuild, run again."""
        try:
            return apply()
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as e:
            self._fresh(f"the loaded policy failed: {type(e).__name__}")
            return apply()

    def __contains__(self, key: str) -> bool:
        return key in self._current

    @property
    def _current(self) -> policies.CachePolicy:
        assert self.policy is not None  # set by _sync inside every session
        return self.policy

    def _apply_request(self, key: str, size: int, table: Optional[str], own: bool) -> bool:
        policy = self._current
        if table is not None:
            plans.tag(policy, [key], table)
        hit = policy.request(key, size)
        evicted = policy.pop_evicted()
        if own:  # the process that made a request removes what it evicted; replaying processes find it gone
            for k in evicted:
                self.remove(k)
        return hit

    # -- persistence -------------------------------------------------------------------------------------------
    def _sync(self) -> None:
        """Bring the in-memory policy up to date with the folder (load, replay, or rebuild)."""
        try:
            st = os.stat(self._snapshot)
        except FileNotFoundError:
            self._fresh("no state yet", quiet=True)
            return
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        try:
            if identity != self._seen:
                self._load()
                self._seen = identity
            self._replay()
        except StateError as e:
            self._fresh(str(e))

    def _load(self) -> None:
        try:
            data = json.loads(self._snapshot.read_text())
        except (OSError, ValueError, UnicodeDecodeError, RecursionError) as e:
            raise StateError(f"state is not readable JSON ({type(e).__name__})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
            raise StateError("state is not a shared cache snapshot of this version")
        if data.get("policy") != self.name or data.get("options") != self.options:
            raise StateError(f"state is for policy {data.get('policy')!r} {data.get('options')!r}")
        journal = data.get("journal")
        if not isinstance(journal, str) or not re.fullmatch(r"[0-9a-f]{32}", journal):
            raise StateError("state names no valid journal")
        self.policy = decode(data.get("state"), self.name, self.capacity_bytes)
        self._journal, self._offset, self._ops = journal, 0, 0

    def _replay(self) -> None:
        path = self._journal_path(self._journal)
        if not path.exists():
            if self._offset:
                raise StateError("journal disappeared")
            return
        with path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        if data and not data.endswith(b"\n"):
            raise StateError("journal ends in a partial line")
        for line in data.splitlines():
            self._replay_line(line)
            self._ops += 1
        self._offset += len(data)

    def _replay_line(self, line: bytes) -> None:
        try:
            op = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise StateError("journal line is not JSON") from None
        try:
            if op[0] == "r" and len(op) == 4 and _key(op[1]) and _size(op[2]) and _table(op[3]):
                self._apply_request(op[1], op[2], op[3], own=False)
            elif op[0] == "a" and len(op) == 4 and isinstance(op[1], str) and isinstance(op[2], list) \
                    and all(_key(k) for k in op[2]) and type(op[3]) is int and op[3] >= 0:
                plans.announce(self._current, op[1], op[2], op[3])
            elif op[0] == "w" and len(op) == 2 and isinstance(op[1], str):
                plans.withdraw(self._current, op[1])
            else:
                raise StateError(f"journal holds an unknown operation {str(op)[:60]}")
        except (IndexError, TypeError, KeyError):
            raise StateError(f"journal holds a malformed operation {str(op)[:60]}") from None

    def _append(self, op: list) -> None:
        data = (json.dumps(op, separators=(",", ":")) + "\n").encode()
        with self._journal_path(self._journal).open("ab") as f:
            f.write(data)
        self._offset += len(data)
        self._ops += 1
        if self.record is not None:
            with self.record.open("ab") as f:
                f.write(data)

    def _fresh(self, reason: str, quiet: bool = False) -> None:
        """A new policy that adopts the objects present (oldest first); drops what it does not keep."""
        policy = policies.make(self.name, self.capacity_bytes, **self.options)
        present = [(k, s) for k, s in self.contents() if KEY.match(k)]
        for key, size in present:
            if policy.fits(size):
                policy.request(key, size)
        policy.pop_evicted()
        for key, _ in present:
            if key not in policy:
                self.remove(key)
        if not quiet:
            log.warning("%s: cache state not trusted (%s); rebuilt from the %d cached files in the folder",
                        self.directory, reason, len(present))
        self.policy = policy
        self._write_snapshot()

    def _write_snapshot(self) -> None:
        """Persist the in-memory policy and start a new, empty journal."""
        policy = self._current
        check(policy, self.name, self.capacity_bytes)
        old = self._journal
        self._journal, self._offset, self._ops = uuid.uuid4().hex, 0, 0
        data = {"format": FORMAT, "version": VERSION, "policy": self.name, "options": self.options,
                "capacity_bytes": self.capacity_bytes, "journal": self._journal, "state": encode(policy)}
        tmp = self._snapshot.with_name(f".state.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        os.replace(tmp, self._snapshot)
        st = os.stat(self._snapshot)
        self._seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if old:
            self._journal_path(old).unlink(missing_ok=True)
        for key, _ in self.contents():
            if KEY.match(key) and key not in policy:
                self.remove(key)  # left behind by a process that stopped between evicting and deleting


def _key(k) -> bool:
    return isinstance(k, str) and bool(KEY.match(k))


def _size(s) -> bool:
    return type(s) is int and 0 < s <= MAX_SIZE


def _table(t) -> bool:
    return t is None or (isinstance(t, str) and len(t) < 4096)
