"""Online labels for reuse prediction: did the object come back within the horizon after it was observed?

Invariants: a sample is labelled only from requests that happened after it was taken (no look-ahead); each sample is
labelled exactly once — positive when its key is requested by its deadline, negative when the deadline passes or
the key comes back later; at most ``max_pending`` samples wait at once (a bounded buffer, counted as model memory).
"""
from __future__ import annotations

from collections import deque


class Labeler:
    def __init__(self, max_pending: int):
        self.max_pending = max_pending
        self.queue: deque = deque()  # entries [key, taken_at, deadline, payload, alive], in taking order
        self.pending: dict = {}  # key -> list of its live entries, oldest first
        self.labelled = 0

    def full(self) -> bool:
        return len(self.queue) >= self.max_pending

    def add(self, key, now: int, horizon: int, payload) -> None:
        if len(self.queue) >= self.max_pending:
            return
        entry = [key, now, now + horizon, payload, True]
        self.queue.append(entry)
        self.pending.setdefault(key, []).append(entry)

    def on_request(self, key, now: int, out: list) -> None:
        """Appends ``(payload, delay, positive)`` for every live sample of ``key`` to ``out``."""
        entries = self.pending.pop(key, None)
        if not entries:
            return
        for e in entries:
            if e[4]:
                e[4] = False
                out.append((e[3], now - e[1], now <= e[2]))
        self.labelled += len(entries)

    def expire(self, now: int, out: list) -> None:
        """Appends ``(payload, None, False)`` for samples whose deadline passed without a request."""
        queue, pending = self.queue, self.pending
        while queue and (queue[0][2] < now or not queue[0][4]):
            e = queue.popleft()
            if not e[4]:
                continue
            e[4] = False
            out.append((e[3], None, False))
            self.labelled += 1
            entries = pending.get(e[0])
            if entries and entries[0] is e:
                entries.pop(0)
                if not entries:
                    del pending[e[0]]


class FillRate:
    """Bytes admitted per request, smoothed over windows of requests: how fast new admissions refill the cache.

    A window with no admissions leaves the rate as it was; the first window with some sets it outright.
    """

    def __init__(self):
        self.rate = 0.0
        self.pending = 0  # bytes admitted in the current window

    def close_window(self, requests: int) -> None:
        rate, self.pending = self.pending / requests, 0
        if rate > 0:
            self.rate = rate if self.rate <= 0 else 0.99 * self.rate + 0.01 * rate

    def horizon(self, capacity_bytes: int, factor: float = 1.0) -> int:
        """Requests until admissions at this rate have filled ``factor`` × the capacity (call once ``rate > 0``)."""
        return int(factor * capacity_bytes / self.rate) + 1
