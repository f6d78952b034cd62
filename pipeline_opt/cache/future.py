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

Index, built once per announcement (the per-request work is a few dictionary look-ups): each source keeps, per
key, its earliest pending position (``head``) and, per position, the next position of the same key (``nxt``);
``where`` maps a key to the sources that still announce it. A loader re-announcing at each epoch start (the rest
of this epoch, which it announced before, and the next one) only appends the new epoch.

Invariants:
- a source's announcement replaces its previous one (when the new plan begins with exactly the old plan's pending
  part, and neither a delay nor a rate is given, the source keeps its cursor and pace and gains the new tail:
  the same future, indexed once); ``withdraw(source)`` forgets it;
- a request consumes at most one pending position: of the sources that announced the key, the one whose next
  pending position of it is nearest their cursor, if that is at most ``MATCH_AHEAD`` positions ahead (and at most
  ``MATCH_AHEAD`` behind); a request matching nothing is *unannounced* and changes no cursor; positions more than
  ``MATCH_AHEAD`` behind their source's cursor can never match again and are dropped when met;
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

from typing import Hashable, Optional, Sequence

INF = float("inf")
POSITION_BYTES = 16  # key reference, next position of the key, index entry
SOURCE_BYTES = 64
MATCH_AHEAD = 256  # a request further ahead than this in a source's order is not that source's
PACE_WEIGHT = 1 / 64  # weight of one matched request in a source's measured pace (positions per tick)
PACE_DRIFT = 0.05  # relative change of a pace that invalidates estimates made with the old one


class Source:
    """One announcing stream: its order, its index, cursor (next expected position) and measured pace."""

    def __init__(self, name: str, rate: float, base_time: float) -> None:
        self.name = name
        self.keys: list = []
        self.nxt: list = []  # position -> next position of the same key in this source, -1 for none
        self.head: dict = {}  # key -> its earliest pending position
        self.last: dict = {}  # key -> its last position (where the next announced tail links in)
        self.rate = self.rate_at_version = rate
        self.drift = PACE_DRIFT * rate  # how far the rate may move from ``rate_at_version`` before estimates go stale
        self.base_time, self.base_pos = base_time, 0
        self.cursor = 0
        self.started = False
        self.remaining = 0  # pending positions

    def expected(self, pos: int) -> float:
        return self.base_time + (pos - self.base_pos) / self.rate

    def next_from(self, pos: int) -> float:
        """Expected tick of the first position from ``pos`` on (in one key's chain) that the cursor has not
        passed; ``INF`` when none is left."""
        cursor, nxt = self.cursor, self.nxt
        while 0 <= pos < cursor:
            pos = nxt[pos]
        return self.base_time + (pos - self.base_pos) / self.rate if pos >= 0 else INF


class KnownFuture:
    def __init__(self) -> None:
        self.clock = 0
        self.sources: dict[str, Source] = {}
        self.where: dict = {}  # key -> the sources with a pending position of it
        self.version = 0
        self.now_next = INF  # next_use of the key of the latest on_request, after that request
        self.announced = self.unannounced = 0

    @property
    def matched(self) -> int:
        """Requests that consumed an announced position (every request either matches or is unannounced)."""
        return self.clock - self.unannounced

    @property
    def positions(self) -> int:
        """Pending positions, over all sources (read when the owner re-fits its memory, not per request)."""
        return sum(s.remaining for s in self.sources.values())

    @property
    def bytes(self) -> int:
        return self.positions * POSITION_BYTES + len(self.sources) * SOURCE_BYTES

    def announce(self, source: str, keys: Sequence[Hashable], start_after: int = 0,
                 rate: Optional[float] = None) -> None:
        """``source`` will request ``keys`` in this order, beginning ``start_after`` ticks from now.

        ``rate``: the share of all requests the source is expected to make while it runs (default: an equal share
        with the other sources; replaced by the measured pace once it runs)."""
        old = self.sources.get(source)
        self.version += 1
        if old is not None and rate is None and start_after <= 0 and self._continues(old, keys):
            self._extend(old, keys[len(old.keys) - old.cursor:])
            return
        self.withdraw(source)
        if rate is None:
            rate = old.rate if old is not None and old.started else 1.0 / (len(self.sources) + 1)
        s = Source(source, max(float(rate), 1e-6), float(self.clock + max(int(start_after), 0)))
        s.started = old is not None and old.started  # the same stream, re-planned: its pace measurement goes on
        self.sources[source] = s
        self._extend(s, keys)

    @staticmethod
    def _continues(old: Source, keys: Sequence[Hashable]) -> bool:
        """Whether ``keys`` begins with exactly the old plan's pending part (and nothing else is pending)."""
        rest = len(old.keys) - old.cursor
        return old.remaining == rest and len(keys) >= rest and list(keys[:rest]) == old.keys[old.cursor:]

    def _extend(self, s: Source, keys: Sequence[Hashable]) -> None:
        """Appends ``keys`` to ``s``'s order and index (one pass)."""
        where, head, last, nxt = self.where, s.head, s.last, s.nxt
        start = len(s.keys)
        s.keys.extend(keys)
        nxt.extend([-1] * len(keys))
        for pos, key in enumerate(keys, start):
            if key in head:  # pending here already: link its last position to this one
                nxt[last[key]] = pos
            else:
                head[key] = pos
                entry = where.get(key)
                if entry is None:
                    where[key] = [s]
                else:
                    entry.append(s)
            last[key] = pos
        s.remaining += len(keys)
        self.announced += len(keys)

    def withdraw(self, source: str) -> None:
        """Forgets the source's plan and frees its pending positions."""
        s = self.sources.pop(source, None)
        if s is None:
            return
        self.version += 1
        where = self.where
        for key in s.head:
            entry = where[key]
            if len(entry) == 1:
                del where[key]
            else:
                entry.remove(s)
        s.remaining = 0
        s.head.clear()

    def on_request(self, key: Hashable) -> bool:
        """Advances the clock by one request; True when the request consumed an announced position. Afterwards
        ``now_next`` is the key's ``next_use``."""
        now = self.clock
        self.clock = now + 1
        entry = self.where.get(key)
        if entry is None:
            self.unannounced += 1
            self.now_next = INF
            return False
        if len(entry) == 1:
            s = entry[0]
            head = s.head
            pos = head[key]
            cursor = s.cursor
            base_time = s.base_time
            if cursor <= pos <= cursor + MATCH_AHEAD and now > base_time and s.started:
                # the common case, inline: the source's next position of the key, read in order
                after = s.nxt[pos]
                if after < 0:
                    self._forget(s, key)
                else:
                    head[key] = after
                s.remaining -= 1
                rate = self._fold_pace(s, pos, now)
                s.base_time = now
                s.base_pos = pos
                s.cursor = pos + 1
                self.now_next = now + (after - pos) / rate if after >= 0 else INF
                return True
            ahead = pos - cursor
            if ahead < -MATCH_AHEAD:
                pos = self._drop_dead(s, key, pos)
                ahead = pos - s.cursor
            if pos < 0 or ahead > MATCH_AHEAD:
                self.unannounced += 1
                self.now_next = INF if pos < 0 else s.expected(pos)
                return False
            self.now_next = s.next_from(self._consume(s, key, pos, now))
            return True
        return self._match_among(key, entry, now)

    def _match_among(self, key: Hashable, entry: list, now: int) -> bool:
        """``on_request`` of a key that several sources announce: consumes the pending position nearest its
        source's cursor (at most ``MATCH_AHEAD`` away) and sets ``now_next`` in the same pass over the sources
        (a match moves only its own source, so the others' next uses are read before it)."""
        best, best_pos, best_ahead = None, -1, MATCH_AHEAD + 1
        others = INF  # the earliest next use among the sources not matched
        for s in list(entry):  # a copy: dropping dead positions may remove a source from the entry
            pos = s.head[key]
            cursor = s.cursor
            if pos < cursor - MATCH_AHEAD:
                pos = self._drop_dead(s, key, pos)
                if pos < 0:
                    continue
            ahead = pos - cursor
            if ahead < best_ahead:
                if best is None:
                    best, best_pos, best_ahead = s, pos, ahead
                    continue
                # displaced: one of the others now
                s, pos, best, best_pos, best_ahead = best, best_pos, s, pos, ahead
            t = s.next_from(pos)  # a source other than the best
            if t < others:
                others = t
        if best is None:
            self.unannounced += 1
            self.now_next = others
            return False
        t = best.next_from(self._consume(best, key, best_pos, now))
        self.now_next = t if t < others else others
        return True

    def _consume(self, s: Source, key: Hashable, pos: int, now: int) -> int:
        """``s``'s position ``pos`` of ``key`` was requested now; returns the key's next position in ``s`` (-1 for
        none). A position at or after the cursor moves the cursor there and folds the observed pace (positions
        advanced per tick since the source's last match) into the source's rate."""
        after = s.nxt[pos]
        if after < 0:
            self._forget(s, key)
        else:
            s.head[key] = after
        s.remaining -= 1
        if pos >= s.cursor:
            if s.started and now > s.base_time:
                self._fold_pace(s, pos, now)
            s.started = True
            s.base_time = now
            s.base_pos = pos
            s.cursor = pos + 1
        return after

    def _fold_pace(self, s: Source, pos: int, now: int) -> float:
        """Folds the pace of a match at ``pos`` (positions advanced per tick since the source's last match) into the
        source's rate, which it returns; a rate that drifted from the one last published bumps ``version``."""
        pace = (pos - s.base_pos) / (now - s.base_time)
        rate = s.rate
        rate += PACE_WEIGHT * ((4.0 if pace > 4.0 else 1e-3 if pace < 1e-3 else pace) - rate)
        s.rate = rate
        if abs(rate - s.rate_at_version) > s.drift:
            s.rate_at_version = rate
            s.drift = PACE_DRIFT * rate
            self.version += 1
        return rate

    def _forget(self, s: Source, key: Hashable) -> None:
        """``s`` has no pending position of ``key`` left."""
        del s.head[key]
        entry = self.where[key]
        if len(entry) == 1:
            del self.where[key]
        else:
            entry.remove(s)

    def _drop_dead(self, s: Source, key: Hashable, pos: int) -> int:
        """Drops ``s``'s positions of ``key`` too far behind its cursor to ever match; its first live one or -1."""
        limit, nxt = s.cursor - MATCH_AHEAD, s.nxt
        while 0 <= pos < limit:
            pos = nxt[pos]
            s.remaining -= 1
        if pos < 0:
            self._forget(s, key)
        else:
            s.head[key] = pos
        return pos

    def next_use(self, key: Hashable) -> float:
        """Expected tick of the key's next announced request (``INF`` when no source announced one)."""
        entry = self.where.get(key)
        if entry is None:
            return INF
        return min(s.next_from(s.head[key]) for s in entry)

    def has_plans(self) -> bool:
        """Whether any source still has positions ahead of its cursor (a plan that is not used up)."""
        return any(s.cursor < len(s.keys) for s in self.sources.values())

    def pending_of(self, source: str) -> int:
        """Pending positions of ``source`` (what replacing its plan frees)."""
        s = self.sources.get(source)
        return 0 if s is None else s.remaining

    def summary(self) -> dict:
        """Plan accuracy so far: announced positions, matched and unannounced requests, per-source cursors."""
        return {"announced": self.announced, "matched": self.matched, "unannounced": self.unannounced,
                "pending": self.positions,
                "sources": {n: {"cursor": s.cursor, "of": len(s.keys), "rate": round(s.rate, 4)}
                            for n, s in self.sources.items()}}
