"""A cache policy's state as plain JSON data, read back without running anything the data names.

``encode(policy)`` turns a policy (its attributes, containers, nested helper objects, shared references and
cycles) into JSON-able data; ``decode(data, name, capacity_bytes)`` rebuilds it. This replaces pickle for state
that other users or jobs can write (the loader's shared file-cache folder).

Invariants:
- decoding never runs code chosen by the data: objects are created with ``object.__new__`` only, and only for
  classes defined in ``pipeline_opt.cache`` modules that keep ``object.__new__``; values are JSON scalars, tagged
  containers (list, tuple, dict, OrderedDict, set, frozenset, deque, numeric numpy arrays, numpy's PCG64 and Python's
  Mersenne Twister generators) and such objects; anything else raises ``StateError``;
- shared references and cycles survive the round trip (``{"$ref": n}`` points at the n-th container or tuple), so
  identity checks (``is``) a policy makes still hold after decoding;
- the decoded policy is checked before use: exactly the registered class for ``name``, the expected capacity,
  ``0 <= used_bytes <= capacity_bytes``, a ``resident`` dict of positive integer sizes.
"""
from __future__ import annotations

import importlib
import importlib.util
import random
import re
from collections import OrderedDict, deque
from typing import Any

import numpy as np

from pipeline_opt.cache import policies
from pipeline_opt.errors import PipelineOptError

_MODULE = re.compile(r"^pipeline_opt\.cache(\.[a-z_][a-z0-9_]*)+$")
_CLASS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"}
_SCALARS = (str, int, float, bool, type(None))


class StateError(PipelineOptError):
    """Persisted policy state that cannot be trusted: not valid, not ours, or inconsistent."""


def encode(obj: Any) -> Any:
    return _Encoder().value(obj)


class _Encoder:
    def __init__(self) -> None:
        self.memo: dict[int, int] = {}
        self.keep: list = []  # keeps encoded objects alive, so their ids stay unique while encoding

    def value(self, v: Any) -> Any:
        if isinstance(v, _SCALARS):
            return v
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, frozenset):
            return {"$fs": [self.value(x) for x in v]}
        ref = self.memo.get(id(v))
        if ref is not None:
            return {"$ref": ref}
        self.memo[id(v)] = n = len(self.memo)
        self.keep.append(v)
        return self._container(v, n)

    def _container(self, v: Any, n: int) -> dict:
        if type(v) is tuple:
            return {"$t": n, "v": self._items(list(v))}
        if type(v) is list:
            return {"$l": n, "v": self._items(v)}
        if type(v) is OrderedDict:
            return {"$od": n, "v": [[self.value(k), self.value(x)] for k, x in v.items()]}
        if type(v) is dict:
            return {"$d": n, "v": [[self.value(k), self.value(x)] for k, x in v.items()]}
        if type(v) is set:
            return {"$s": n, "v": [self.value(x) for x in v]}
        if type(v) is deque:
            return {"$q": n, "v": [self.value(x) for x in v], "maxlen": v.maxlen}
        if isinstance(v, np.ndarray):
            if v.dtype.name not in _DTYPES:
                raise StateError(f"cannot persist a numpy array of dtype {v.dtype}")
            return {"$a": n, "dtype": v.dtype.name, "shape": list(v.shape), "v": v.ravel().tolist()}
        if isinstance(v, np.random.Generator):
            if type(v.bit_generator) is not np.random.PCG64:
                raise StateError(f"cannot persist a {type(v.bit_generator).__name__} generator")
            return {"$rng": n, "state": self.value(v.bit_generator.state)}
        if type(v) is random.Random:
            return {"$mt": n, "state": self.value(v.getstate())}
        return self._object(v, n)

    def _items(self, v: list) -> list:
        if all(type(x) in (int, float, str) for x in v):
            return v  # a flat list of scalars: no per-item work
        return [self.value(x) for x in v]

    def _object(self, v: Any, n: int) -> dict:
        cls = type(v)
        if not _allowed(cls) or not hasattr(v, "__dict__"):
            raise StateError(f"cannot persist an object of type {cls.__module__}.{cls.__qualname__}")
        return {"$o": n, "cls": f"{cls.__module__}:{cls.__qualname__}",
                "v": {k: self.value(x) for k, x in vars(v).items()}}


def _allowed(cls: type) -> bool:
    """A class of ours that ``object.__new__`` creates without running any of its code."""
    new: object = cls.__new__
    return bool(_MODULE.match(cls.__module__)) and new is object.__new__ and "." not in cls.__qualname__


def decode(data: Any, name: str, capacity_bytes: int) -> policies.CachePolicy:
    """The policy ``data`` describes, checked to be a sound ``name`` policy of ``capacity_bytes``."""
    try:
        policy = _Decoder().value(data)
    except StateError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError) as e:
        raise StateError(f"malformed policy state: {type(e).__name__}: {e}") from None
    check(policy, name, capacity_bytes)
    return policy


class _Decoder:
    def __init__(self) -> None:
        self.memo: dict[int, Any] = {}

    def value(self, v: Any) -> Any:
        if isinstance(v, _SCALARS):
            return v
        if isinstance(v, list):
            raise StateError("a bare list is not valid state")
        if not isinstance(v, dict) or len(v) == 0:
            raise StateError(f"unexpected value {str(v)[:60]!r}")
        if "$fs" in v:
            return frozenset(self.value(x) for x in v["$fs"])
        if "$ref" in v:
            if v["$ref"] not in self.memo:
                raise StateError(f"reference to unknown object {v['$ref']!r}")
            return self.memo[v["$ref"]]
        return self._container(v)

    def _register(self, v: dict, tag: str, obj: Any) -> Any:
        n = v[tag]
        if not isinstance(n, int) or n in self.memo:
            raise StateError(f"bad object number {n!r}")
        self.memo[n] = obj
        return obj

    def _container(self, v: dict) -> Any:
        if "$t" in v:  # a tuple cannot hold a reference to itself: decode the items, then register
            items = tuple(self.value(x) for x in v["v"])
            out: Any = self._register(v, "$t", items)
        elif "$l" in v:
            out = self._register(v, "$l", [])
            out.extend(self.value(x) for x in v["v"])
        elif "$d" in v or "$od" in v:
            out = self._register(v, "$d" if "$d" in v else "$od", {} if "$d" in v else OrderedDict())
            for k, x in v["v"]:
                out[self.value(k)] = self.value(x)
        elif "$s" in v:
            out = self._register(v, "$s", set())
            out.update(self.value(x) for x in v["v"])
        elif "$q" in v:
            out = self._register(v, "$q", deque(maxlen=v.get("maxlen")))
            out.extend(self.value(x) for x in v["v"])
        elif "$a" in v:
            if v["dtype"] not in _DTYPES:
                raise StateError(f"numpy dtype {v['dtype']!r} is not allowed")
            out = self._register(v, "$a", np.array(v["v"], dtype=v["dtype"]).reshape(v["shape"]))
        elif "$rng" in v:
            out = self._register(v, "$rng", np.random.Generator(np.random.PCG64()))
            out.bit_generator.state = self.value(v["state"])
        elif "$mt" in v:
            out = self._register(v, "$mt", random.Random())
            out.setstate(self.value(v["state"]))
        elif "$o" in v:
            out = self._object(v)
        else:
            raise StateError(f"unknown tag in {sorted(v)[:3]}")
        return out

    def _object(self, v: dict) -> Any:
        module, _, qualname = str(v["cls"]).partition(":")
        if not _MODULE.match(module) or not _CLASS.match(qualname) or importlib.util.find_spec(module) is None:
            raise StateError(f"class {v['cls']!r} is not a pipeline_opt.cache class")
        cls = getattr(importlib.import_module(module), qualname, None)
        if not isinstance(cls, type) or not _allowed(cls):
            raise StateError(f"class {v['cls']!r} is not a pipeline_opt.cache class")
        obj = self._register(v, "$o", object.__new__(cls))
        attrs = v["v"]
        if not isinstance(attrs, dict) or not all(isinstance(k, str) and _CLASS.match(k) for k in attrs):
            raise StateError(f"bad attributes of {v['cls']!r}")
        for k, x in attrs.items():
            obj.__dict__[k] = self.value(x)
        return obj


def check(policy: Any, name: str, capacity_bytes: int) -> None:  # Any: decoded data, checked here
    """Raises ``StateError`` unless ``policy`` is a sound ``name`` policy of ``capacity_bytes``."""
    cls: type = policies.policy_class(name)
    if type(policy) is not cls or not isinstance(policy, policies.CachePolicy):
        raise StateError(f"state holds a {type(policy).__name__}, not the {name} policy")
    if getattr(policy, "capacity_bytes", None) != capacity_bytes:
        raise StateError(f"state capacity {getattr(policy, 'capacity_bytes', None)!r} is not {capacity_bytes}")
    used = policy.used_bytes
    if not isinstance(used, int) or not 0 <= used <= capacity_bytes:
        raise StateError(f"state uses {used!r} bytes of {capacity_bytes}")
    resident = policy.resident
    if not isinstance(resident, dict) or not all(type(s) is int and s > 0 for s in resident.values()):
        raise StateError("state's cached objects do not all have a positive size")
    if sum(resident.values()) > used:
        raise StateError("state's cached objects hold more bytes than it counts")
