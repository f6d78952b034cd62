"""The known part of a cache's future: request plans announced by the readers that know them.

A *source* is one stream of requests that knows its own order ahead of time: one loader worker (its seeded
shuffled file order for the rest of this epoch and the next), the maintenance schedule (tonight's scans), a job
scheduler. ``announce(source, keys)`` tells the cache that source's next requests, in order. The cache matches
each request it serves to the position that announced it, and so knows about when every announced key is needed
next: Belady's rule can run on the known part of the future.

Clock: every request to the cache is one tick, whoever made it. A source's positions become ticks through its
measured pace (positions per tick, an average over its matched requests): position ``p`` is expected at
``base_time + (p - base_pos) / rate``, where ``(base_time, base_pos)`` is the source's last matched request (or
its announced start). Several loaders sharing one cache therefore compare correctly: a file 100 positions ahead
in a loader that makes a third of the requests is 300 ticks away.

Invariants:
- a source's announcement replaces its previous one; ``withdraw(source)`` forgets it;
- a request consumes at most one pending position: of the sources that announced the key, the one whose next
  pending position of it is nearest their cursor, if that is at most ``MATCH_AHEAD`` positions ahead; a request
  matching nothing is *unannounced* and changes no cursor;
- ``next_use(key)`` is the earliest expected tick of a pending position of ``key`` that its source has not passed,
  or ``INF`` when none is left;
- memory: ``bytes`` counts ``POSITION_BYTES`` per pending position and ``SOURCE_BYTES`` per source, and the policy
  that owns the future charges it against its capacity;
- ``version`` changes whenever estimates may have moved other than by the passing of time (an announcement, a
  withdrawal, a source's pace drifting by more than ``PACE_DRIFT``), so a policy can keep estimates and
  re-evaluate only those older than the current version;
- deterministic: the same calls in the same order give the same estimates (no clocks, no randomness).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Iterable, Optional, Sequence

INF = float("inf")
POSITION_BYTES = 16  # key reference, position, source index
SOURCE_BYTES = 64
MATCH_AHEAD = 256  # a request further ahead than this in a source's order is not that source's
WITHDRAWN = 1 << 62  # the cursor of a withdrawn source: its entries match nothing and estimate nothing
PACE_WEIGHT = 1 / 64  # weight of one matched request in a source's measured pace (positions per tick)
PACE_DRIFT = 0.05  # relative change of a pace that invalidates estimates made with the old one


@dataclass
class Source:
    """One announcing stream: its order, cursor (next expected position) and measured pace."""

    name: str
    keys: list
    rate: float
    base_time: float
    base_pos: int = 0
    cursor: int = 0
    matched: int = 0
    started: bool = False
    rate_at_version: float = 0.0
    remaining: int = 0  # its entries still in ``pending``

    def expected(self, pos: int) -> float:
        return self.base_time + (pos - self.base_pos) / self.rate


class KnownFuture:
    def __init__(self) -> None:
        self.clock = 0
        self.sources: dict[str, Source] = {}
        self.pending: dict = {}  # key -> list of (Source, position), in announcement order per source
        self.positions = 0  # entries in ``pending``, withdrawn ones included until they are purged
        self.withdrawn = 0  # entries of withdrawn sources still in ``pending``
        self.version = 0
        self.now_next = INF  # next_use of the key of the latest on_request, after that request
        self.announced = self.matched = self.unannounced = 0

    @property
    def bytes(self) -> int:
        return self.positions * POSITION_BYTES + len(self.sources) * SOURCE_BYTES

    def announce(self, source: str, keys: Sequence[Hashable], start_after: int = 0,
                 rate: Optional[float] = None) -> None:
        """``source`` will request ``keys`` in this order, beginning ``start_after`` ticks from now.

        ``rate``: the share of all requests the source is expected to make while it runs (default: an equal share
        with the other sources; replaced by the measured pace once it runs)."""
        old = self.sources.get(source)
        self.withdraw(source)
        if rate is None:
            rate = old.rate if old is not None and old.started else 1.0 / (len(self.sources) + 1)
        s = Source(source, list(keys), max(float(rate), 1e-6), float(self.clock + max(int(start_after), 0)))
        if old is not None and old.started:  # the same stream, re-planned: its pace measurement goes on
            s.started = True
        s.rate_at_version = s.rate
        self.sources[source] = s
        pending = self.pending
        for pos, key in enumerate(s.keys):
            entries = pending.get(key)
            if entries is None:
                pending[key] = [(s, pos)]
            else:
                entries.append((s, pos))
        s.remaining = len(s.keys)
        self.positions += len(s.keys)
        self.announced += len(s.keys)
        self.version += 1

    def withdraw(self, source: str) -> None:
        """Forgets the source's plan: its entries go inert at once (O(1)) and are purged once they are many."""
        s = self.sources.pop(source, None)
        if s is None:
            return
        self.version += 1
        s.cursor = WITHDRAWN
        self.withdrawn += s.remaining
        if self.withdrawn > max(1024, self.positions // 2):
            self._purge()

    def _purge(self) -> None:
        pending = self.pending
        for key, entries in list(pending.items()):
            kept = [e for e in entries if e[0].cursor != WITHDRAWN]
            if len(kept) != len(entries):
                if kept:
                    pending[key] = kept
                else:
                    del pending[key]
        self.positions -= self.withdrawn
        self.withdrawn = 0

    def on_request(self, key: Hashable) -> bool:
        """Advances the clock by one request; True when the request consumed an announced position. Afterwards
        ``now_next`` is the key's ``next_use``."""
        now = self.clock
        self.clock = now + 1
        entries = self.pending.get(key)
        if entries is None:
            self.unannounced += 1
            self.now_next = INF
            return False
        if len(entries) == 1 or (len(entries) == 2 and entries[0][0] is entries[1][0]):  # one source
            best = 0 if -MATCH_AHEAD <= entries[0][1] - entries[0][0].cursor <= MATCH_AHEAD else -1
        else:
            best = self._nearest(entries)
        if best < 0:
            self.unannounced += 1
            self.now_next = self.next_use(key)
            return False
        s, pos = entries.pop(best)
        self.positions -= 1
        s.remaining -= 1
        if pos >= s.cursor:
            if s.started and now > s.base_time:
                self._pace(s, (pos - s.base_pos) / (now - s.base_time))
            s.started = True
            s.base_time, s.base_pos, s.cursor = now, pos, pos + 1
            s.matched += 1
        self.matched += 1
        if not entries:
            del self.pending[key]
            self.now_next = INF
        elif len(entries) == 1:
            s, pos = entries[0]
            self.now_next = s.base_time + (pos - s.base_pos) / s.rate if pos >= s.cursor else INF
        else:
            self.now_next = self.next_use(key)
        return True

    @staticmethod
    def _nearest(entries: list) -> int:
        """Index of the entry nearest its source's cursor (at most ``MATCH_AHEAD`` away), or -1."""
        best, best_ahead = -1, MATCH_AHEAD + 1
        for i, (s, pos) in enumerate(entries):
            ahead = pos - s.cursor
            if -MATCH_AHEAD <= ahead < best_ahead:
                best, best_ahead = i, ahead
        return best

    def _pace(self, s: Source, pace: float) -> None:
        """Fold one observed pace (positions advanced per tick since the source's last match) into its rate."""
        s.rate += PACE_WEIGHT * (min(max(pace, 1e-3), 4.0) - s.rate)
        if abs(s.rate - s.rate_at_version) > PACE_DRIFT * s.rate_at_version:
            s.rate_at_version = s.rate
            self.version += 1

    def next_use(self, key: Hashable) -> float:
        """Expected tick of the key's next announced request (``INF`` when no source announced one)."""
        entries = self.pending.get(key)
        if entries is None:
            return INF
        best = INF
        for s, pos in entries:
            if pos >= s.cursor:
                t = s.base_time + (pos - s.base_pos) / s.rate
                if t < best:
                    best = t
        return best

    def has_plans(self) -> bool:
        """Whether any source still has positions ahead of its cursor (a plan that is not used up)."""
        return any(s.cursor < len(s.keys) for s in self.sources.values())

    def announced_keys(self, source: str) -> Iterable:
        s = self.sources.get(source)
        return () if s is None else s.keys

    def summary(self) -> dict:
        """Plan accuracy so far: announced positions, matched and unannounced requests, per-source cursors."""
        return {"announced": self.announced, "matched": self.matched, "unannounced": self.unannounced,
                "pending": self.positions,
                "sources": {n: {"cursor": s.cursor, "of": len(s.keys), "rate": round(s.rate, 4)}
                            for n, s in self.sources.items()}}
