"""The plan API: how readers that know their future tell a cache about it.

A policy that can use plans (``planned``) has three methods; every other policy has none of them, and the helpers
here make the calls safe on any policy (a no-op that returns 0), so callers never branch on the policy:

- ``announce(source, keys, start_after=0, rate=None) -> int`` — ``source`` (one loader worker, one scheduled scan)
  will request ``keys`` in this order, starting ``start_after`` requests from now; replaces that source's previous
  plan; returns how many positions the cache kept (it caps plan memory inside its byte budget);
- ``withdraw(source)`` — the source stopped (its job ended or was cancelled);
- ``tag(keys, table)`` — these keys are files of ``table`` (admission by table, pins, exclusions).

Invariants: a plan only changes *which* objects a policy keeps, never the contract (``request`` still returns
True exactly for cached keys, ``used_bytes`` still counts plan memory inside the capacity); a wrong plan costs
hits, never correctness; keys outside the reader's catalog are dropped by ``known_only`` with one warning.
"""
from __future__ import annotations

import logging
from typing import Collection, Hashable, Iterable, Optional, Sequence

log = logging.getLogger(__name__)


def supports_plans(policy) -> bool:
    return callable(getattr(policy, "announce", None))


def announce(policy, source: str, keys: Sequence[Hashable], start_after: int = 0,
             rate: Optional[float] = None) -> int:
    if not supports_plans(policy):
        return 0
    return int(policy.announce(source, list(keys), start_after, rate))


def withdraw(policy, source: str) -> None:
    if supports_plans(policy):
        policy.withdraw(source)


def tag(policy, keys: Iterable[Hashable], table: str) -> None:
    if supports_plans(policy):
        policy.tag(keys, table)


def known_only(keys: Sequence[Hashable], catalog: Collection[Hashable], what: str = "plan") -> list:
    """``keys`` that are in ``catalog``; the others are ignored with one warning naming how many and the first."""
    known = [k for k in keys if k in catalog]
    unknown = len(keys) - len(known)
    if unknown:
        first = next(k for k in keys if k not in catalog)
        log.warning("%s names %d file(s) not in the snapshot (first: %s); ignored", what, unknown, first)
    return known
