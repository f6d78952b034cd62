"""Cache policies by name: ``make(name, capacity_bytes)`` builds one, ``names()`` lists them.

Every policy keeps the contract in ``base.CachePolicy``: ``request(key, size) -> bool`` (True = hit), ``key in
policy``, ``pop_evicted()``, ``used_bytes`` (objects plus the policy's own metadata, never above the capacity).
Modules are imported on first use, so listing names stays cheap and torch is loaded only by the policies that need it.
"""
from __future__ import annotations

import importlib
import importlib.util

from pipeline_opt.cache.policies.base import CachePolicy, CachePolicyError

_REGISTRY = {
    "lru": "lru:LRU",
    "fifo": "fifo:FIFO",
    "lfu": "lfu:LFU",
    "arc": "arc:ARC",
    "s3fifo": "s3fifo:S3FIFO",
    "sieve": "sieve:SIEVE",
    "gdsf": "gdsf:GDSF",
    "lecar": "lecar:LeCaR",
    "lrb": "lrb:LRBTable",
    "lstm": "lstm:LSTMReuse",
    "mlp_admit": "mlp_admit:MLPAdmission",
    "rl": "rl:TDValue",
    "learned": "learned:Learned",
    "planned": "planned:Planned",
    "keep_resident": "keep:KeepResident",
}

__all__ = ["CachePolicy", "CachePolicyError", "make", "names", "policy_class"]


def names() -> list[str]:
    """Registered policy names whose module is present, in a stable order."""
    return [n for n in _REGISTRY if _available(n)]


def policy_class(name: str) -> type:
    if name not in _REGISTRY or not _available(name):
        raise CachePolicyError(f"unknown cache policy {name!r}; known: {', '.join(names())}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def make(name: str, capacity_bytes: int, **options) -> CachePolicy:
    """A fresh policy holding at most ``capacity_bytes`` bytes, data and metadata together."""
    return policy_class(name)(int(capacity_bytes), **options)


def _available(name: str) -> bool:
    module = _REGISTRY[name].split(":")[0]
    return importlib.util.find_spec(f"{__name__}.{module}") is not None
