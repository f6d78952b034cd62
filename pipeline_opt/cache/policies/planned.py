"""``planned``: Belady's rule on the announced plans; S3-FIFO where nothing is announced or the plans prove wrong.

Readers that know their future announce it (``announce``/``withdraw``/``tag``, the plan API of
``pipeline_opt.cache.plans``). The policy runs in one of three modes:

- ``s3fifo`` — nothing was ever announced and no table is pinned or excluded: the policy *is* S3-FIFO (the same
  queues, the same metadata, no shadow), so on traces without plans it misses exactly what S3-FIFO misses;
- ``plan`` — the live cache follows ``KnownFutureEviction`` (Belady on the known part, gap estimates elsewhere,
  admission by table); a shadow S3-FIFO (metadata only, ``1/shadow_ratio`` of the capacity) sees the same spatially
  sampled ``1/shadow_ratio`` of the keys;
- ``fallback`` — the shadow missed ``margin`` fewer bytes than the live cache on the sampled keys (decayed counts,
  judged every ``judge_every`` sampled requests, at least ``dwell`` sampled requests after the last switch): the live
  cache became an S3-FIFO holding the same objects, and a sampled shadow ``KnownFutureEviction`` measures whether the
  plans became right again (then the roles swap back, once that shadow misses ``return_margin`` fewer bytes).
  Each switch the duel decides doubles the wait before the next one (up to 16 × ``dwell``), so a duel that keeps
  flipping settles. When every announced plan is used up, the live cache becomes S3-FIFO at once (there is nothing
  to follow), and the next announcement brings the plan engine back at once.

Pinned tables (``pins``) are cached outside both engines in every mode and never evicted (a pinned file that does
not fit beside the other pinned files is not cached); excluded tables (``exclusions``) are never cached. A table
matches a pin or an exclusion by its full name (as tagged) or its last path component.

Invariants: ``used_bytes`` = the pinned files + the live cache (objects + their metadata) + the shadow's metadata
+ the announced positions and table tags; it never exceeds ``capacity_bytes``: the live cache's capacity is what
the rest leaves (shrunk at once by what the shadow grows on a sampled miss, re-fitted at every announcement, tag,
pin, switch and judgement; between those only consumed plan positions change the rest, and they lower it), and
announced positions and tags together are capped at ``max_plan_fraction`` of the capacity (later positions of an
announcement are dropped, and counted). A switch keeps the cached objects (nothing is evicted by it).
Deterministic: sampling is a hash of the key (crc32), no randomness.

Cost: the plan index is built once per announcement (``KnownFuture``); a request does a few dictionary look-ups to
match it, at most one heap push in the plan engine (an admission pushes at once; a hit queues its entry, and the next
eviction pushes each key hit since then once), the sampling check (one AND for integer keys when ``shadow_ratio`` is a
power of two), and, for the sampled eighth of the keys, one request to the shadow.
"""
from __future__ import annotations

import zlib
from typing import Hashable, Iterable, Optional, Sequence

from pipeline_opt.cache.future import POSITION_BYTES, SOURCE_BYTES, KnownFuture
from pipeline_opt.cache.policies.base import CachePolicy
from pipeline_opt.cache.policies.known_future import KnownFutureEviction
from pipeline_opt.cache.policies.s3fifo import S3FIFO

TAG_BYTES = 8  # a key's table, as an index into the table names


class Planned(CachePolicy):
    name = "planned"
    entry_overhead = KnownFutureEviction.entry_overhead

    def __init__(self, capacity_bytes: int, pins: Iterable[str] = (), exclusions: Iterable[str] = (),
                 margin: float = 0.02, return_margin: float = 0.05, shadow_ratio: int = 8, judge_every: int = 32,
                 dwell: int = 256, decay_every: int = 2048, max_plan_fraction: float = 0.1, **kw):
        super().__init__(capacity_bytes, **kw)
        self.pins, self.exclusions = tuple(pins), tuple(exclusions)
        self.margin, self.return_margin, self.shadow_ratio = margin, return_margin, max(1, int(shadow_ratio))
        ratio = self.shadow_ratio
        self._sample_mask = (ratio - 1) << 7 if ratio > 1 and not ratio & (ratio - 1) else 0
        self.judge_every, self.dwell, self.decay_every = judge_every, dwell, decay_every
        self.max_plan_bytes = int(max_plan_fraction * self.capacity_bytes)
        self.tables: dict = {}
        self.pinned: dict = {}  # cached keys of pinned tables -> size
        self.pinned_bytes = 0
        self._listing: dict = {}  # table -> "pin", "exclude" or ""
        self.future: Optional[KnownFuture] = None
        self.live: CachePolicy = S3FIFO(self.capacity_bytes)
        self.shadow: Optional[CachePolicy] = None
        self.mode = "s3fifo"
        self.live_missed = self.shadow_missed = 0.0
        self.sampled = self.since_switch = 0
        self.switches = self.duel_switches = 0
        self.idle = False  # in fallback because every plan was used up (a new plan switches back at once)
        self.dropped_positions = 0
        self.resident = self.live.resident
        self.shadow_charged = 0  # the shadow's metadata, as last charged against the live cache
        self._listed_tables = bool(self.pins or self.exclusions)
        if self.pins or self.exclusions:
            self._start_planning()

    # -- the plan API --------------------------------------------------------------------------------------------
    def announce(self, source: str, keys: Sequence[Hashable], start_after: int = 0,
                 rate: Optional[float] = None) -> int:
        """``source`` will request ``keys`` in this order; returns how many positions were kept (the rest did not
        fit the plan memory cap)."""
        future = self._start_planning()
        room = self.max_plan_bytes - self._plan_bytes() + future.pending_of(source) * POSITION_BYTES
        if source not in future.sources:
            room -= SOURCE_BYTES
        keep = max(0, min(len(keys), room // POSITION_BYTES))
        self.dropped_positions += len(keys) - keep
        future.announce(source, keys[:keep], start_after, rate)  # cached estimates are re-checked lazily
        if self.mode == "fallback" and self.idle and keep:  # S3-FIFO ran only because no plan was left
            self._switch()
        self._fit()
        return keep

    def withdraw(self, source: str) -> None:
        if self.future is not None and source in self.future.sources:
            self.future.withdraw(source)
            self._fit()

    def tag(self, keys: Iterable[Hashable], table: str) -> None:
        """``keys`` belong to ``table`` (for admission by table, pins and exclusions)."""
        tables = self.tables
        room = (self.max_plan_bytes - self._plan_bytes()) // TAG_BYTES
        for key in keys:
            if key not in tables:
                if room <= 0:
                    break
                tables[key] = table
                room -= 1
        self._fit()

    # -- requests --------------------------------------------------------------------------------------------
    def request(self, key, size) -> bool:
        future = self.future
        if future is None:
            return self.live.request(key, size)
        future.on_request(key)
        if self._listed_tables:
            listed = self._listed(self.tables.get(key))
            if listed:
                return self._listed_request(key, size, listed)
        hit = self.live.request(key, size)
        mask = self._sample_mask  # ``_sampled`` as one AND for integer keys and a power-of-two ratio
        if not (key * 2654435761) & mask if mask and type(key) is int else _sampled(key, self.shadow_ratio):
            self._duel(key, size, hit)
        return hit

    def _duel(self, key, size: int, live_hit: bool) -> None:
        shadow = self.shadow
        assert shadow is not None  # set whenever a future is
        if not shadow.request(key, size):
            self.shadow_missed += size
            shadow._evicted.clear()
            # between fits only the shadow's growth on a miss can raise the reserve (an announcement, a tag or a
            # pin re-fits; consumed plan positions lower it): charge that growth to the live cache at once
            grown = _metadata(shadow) - self.shadow_charged
            if grown > 0:
                self.shadow_charged += grown
                live = self.live
                room = live.capacity_bytes - grown
                live.capacity_bytes = max(1, room)
                if room < 1 or live.used_bytes > room:
                    self._fit()
        if not live_hit:
            self.live_missed += size
        self.sampled += 1
        self.since_switch += 1
        if not self.sampled % self.decay_every:
            self.live_missed *= 0.5
            self.shadow_missed *= 0.5
        if not self.sampled % self.judge_every:
            self._judge()
            self._fit()  # gives the live cache back what consumed plan positions and a smaller shadow freed

    def _judge(self) -> None:
        """Switch when the shadow wins by the margin, or leave the plan engine when every plan is used up."""
        assert self.future is not None and self.shadow is not None
        self.shadow.capacity_bytes = self._shadow_capacity()  # regrow a shadow that a tight budget shrank
        if self.mode == "plan" and not self.future.has_plans():
            self._switch(idle=True)
            return
        # each switch doubles the wait before the next (up to 16x): a duel that keeps flipping costs fetches
        if self.since_switch >= self.dwell << min(self.duel_switches, 4):
            margin = self.margin if self.mode == "plan" else self.return_margin
            if self.shadow_missed < (1 - margin) * self.live_missed:
                self._switch()

    def _listed(self, table: Optional[str]) -> str:
        if table is None:
            return ""
        listed = self._listing.get(table)
        if listed is None:
            names = {table, table.rstrip("/").rsplit("/", 1)[-1]}
            listed = "exclude" if names & set(self.exclusions) else "pin" if names & set(self.pins) else ""
            self._listing[table] = listed
        return listed

    def _listed_request(self, key, size: int, listed: str) -> bool:
        """Requests of pinned or excluded tables: kept for good (if they fit beside the other pins) or never."""
        if key in self.pinned:
            return True
        if listed == "pin" and self.pinned_bytes + size + self.entry_overhead + self._reserve() - \
                self.pinned_bytes <= self.capacity_bytes:
            self.pinned[key] = size
            self.pinned_bytes += size + self.entry_overhead
            self._fit()
        return False

    def __contains__(self, key: Hashable) -> bool:
        return key in self.resident or key in self.pinned

    def __len__(self) -> int:
        return len(self.resident) + len(self.pinned)

    @property
    def used_bytes(self) -> int:
        live = self.__dict__.get("live")
        return 0 if live is None else live.used_bytes + (self._reserve() if self.future is not None else 0)

    @used_bytes.setter
    def used_bytes(self, value: int) -> None:  # the base class initialises it; the live cache holds the truth
        pass

    def pop_evicted(self) -> list:
        return self.live.pop_evicted()

    # -- modes -----------------------------------------------------------------------------------------------
    def _start_planning(self) -> KnownFuture:
        """Leave pure S3-FIFO: the plan engine takes the cached objects, a sampled S3-FIFO shadows it."""
        if self.future is not None:
            return self.future
        self.future = KnownFuture()
        old = self.live
        assert isinstance(old, S3FIFO)
        self.shadow = _sampled_s3fifo(old, self._shadow_capacity(), self.shadow_ratio)
        self._set_live(self._engine(self.capacity_bytes - self._reserve()), old)
        self.mode = "plan"
        return self.future

    def _switch(self, idle: bool = False) -> None:
        """Swap the live engine and the shadow; ``idle``: leaving the plan engine because no plan is left."""
        was_idle, self.idle = self.idle, idle
        old = self.live
        if self.mode == "plan":
            assert isinstance(old, KnownFutureEviction)
            new: CachePolicy = _s3fifo_holding(old.ordered(), old.capacity_bytes)
            shadow = self._engine(self._shadow_capacity())
            shadow.seed((k, s) for k, s in old.ordered()[::-1] if _sampled(k, self.shadow_ratio))
            shadow.shrink()
            self.shadow, self.mode = shadow, "fallback"
        else:
            assert isinstance(old, S3FIFO)
            self.shadow = _sampled_s3fifo(old, self._shadow_capacity(), self.shadow_ratio)
            new = self._engine(old.capacity_bytes)
            self.mode = "plan"
        self._set_live(new, old)
        self.switches += 1
        if not idle and not was_idle:
            self.duel_switches += 1
        self.since_switch = 0
        self.live_missed = self.shadow_missed = 0.0

    def _set_live(self, new: CachePolicy, old: CachePolicy) -> None:
        if isinstance(new, KnownFutureEviction):
            new.seed(old.resident.items())
        new._evicted = old._evicted  # evictions not yet collected by the caller stay reported
        self.live, self.resident = new, new.resident
        self._fit()

    def _engine(self, capacity: int) -> KnownFutureEviction:
        assert self.future is not None
        return KnownFutureEviction(max(1, capacity), self.future, self.tables)

    def _shadow_capacity(self) -> int:
        return max(1, self.capacity_bytes // self.shadow_ratio)

    # -- memory ----------------------------------------------------------------------------------------------
    def _plan_bytes(self) -> int:
        return (self.future.bytes if self.future is not None else 0) + len(self.tables) * TAG_BYTES

    def _reserve(self) -> int:
        """Bytes the live cache must leave free: plan memory, table tags, the shadow's metadata."""
        future, shadow = self.future, self.shadow
        out = len(self.tables) * TAG_BYTES + self.pinned_bytes
        if future is not None:
            out += future.positions * POSITION_BYTES + len(future.sources) * SOURCE_BYTES
        return out + (0 if shadow is None else _metadata(shadow))

    def _fit(self) -> None:
        """Restore ``used_bytes <= capacity_bytes``: shrink the live cache to what the rest leaves; if the rest alone
        is too big, shrink the shadow (a coarser estimate), and as a last resort drop pinned files."""
        if self.future is None:
            return
        live = self.live
        reserve = self._reserve()  # shrinking the live cache leaves it as it is
        live.capacity_bytes = max(1, self.capacity_bytes - reserve)
        if live.used_bytes > live.capacity_bytes:
            _shrink(live, live.capacity_bytes)
        if live.used_bytes + reserve > self.capacity_bytes:  # the rest alone is too big
            while self.used_bytes > self.capacity_bytes and self.shadow is not None and _shrink_one(self.shadow):
                pass
            while self.used_bytes > self.capacity_bytes and self.pinned:
                key = next(iter(self.pinned))
                self.pinned_bytes -= self.pinned.pop(key) + self.entry_overhead
                live._evicted.append(key)
        # what the live capacity leaves for the shadow (exact unless the capacity sits at its floor of 1, where
        # any growth of the shadow re-fits)
        self.shadow_charged = 0 if self.shadow is None else _metadata(self.shadow)

    def summary(self) -> dict:
        """Mode, switches and plan accuracy (for reports)."""
        out = {"mode": self.mode, "switches": self.switches, "dropped_positions": self.dropped_positions}
        if self.future is not None:
            out.update(self.future.summary())
        return out


def _sampled(key: Hashable, ratio: int) -> bool:
    """A stable pseudo-random share ``1/ratio`` of the keys, the same in every process (spatial sampling)."""
    h = ((key * 2654435761) & 0xFFFFFFFF) >> 7 if type(key) is int else zlib.crc32(str(key).encode())
    return not h % ratio


def _metadata(shadow: CachePolicy) -> int:
    """The bytes a shadow holds: metadata only (it caches no object's bytes)."""
    if isinstance(shadow, KnownFutureEviction):
        return shadow.metadata_bytes()
    assert isinstance(shadow, S3FIFO)
    return len(shadow.resident) * shadow.entry_overhead + len(shadow.ghost) * shadow.ghost_overhead


def _shrink(engine: CachePolicy, capacity: int) -> None:
    while engine.used_bytes > capacity and _shrink_one(engine):
        pass


def _shrink_one(engine: CachePolicy) -> bool:
    """Evicts one object (or forgets one remembered key) of ``engine``; False when it holds nothing."""
    if isinstance(engine, KnownFutureEviction):
        if not engine.resident and not engine.history:
            return False
        engine.capacity_bytes = min(engine.capacity_bytes, max(1, engine.used_bytes - 1))
        engine.shrink()
        return True
    assert isinstance(engine, S3FIFO)
    if not engine.resident and not engine.ghost:
        return False
    engine._evict_one()
    return True


def _s3fifo_holding(ordered: list, capacity: int) -> S3FIFO:
    """An S3-FIFO whose main queue holds ``ordered`` (first = evicted first), frequencies 0."""
    fifo = S3FIFO(max(1, capacity))
    for key, size in ordered:
        fifo.main[key] = size
        fifo.resident[key] = size
        fifo.freq[key] = 0
        fifo.used_bytes += size + fifo.entry_overhead
    return fifo


def _sampled_s3fifo(source: S3FIFO, capacity: int, ratio: int) -> S3FIFO:
    """A copy of ``source`` restricted to the sampled keys, shrunk to ``capacity``: the shadow starts warm."""
    fifo = S3FIFO(capacity)
    for queue, target in ((source.small, fifo.small), (source.main, fifo.main)):
        for key, size in queue.items():
            if _sampled(key, ratio):
                target[key] = size
                fifo.resident[key] = size
                fifo.freq[key] = source.freq[key]
                fifo.used_bytes += size + fifo.entry_overhead
                if target is fifo.small:
                    fifo.small_bytes += size
    for key, size in source.ghost.items():
        if _sampled(key, ratio):
            fifo.ghost[key] = size
            fifo.ghost_bytes += size
            fifo.used_bytes += fifo.ghost_overhead
    while fifo.used_bytes > fifo.capacity_bytes and fifo.resident:
        fifo._evict_one()
    fifo._evicted.clear()
    return fifo
