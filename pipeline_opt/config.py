"""Typed configuration from YAML: one loader for every part's settings dataclasses.

Invariants: a loaded config is fully typed and validated; a malformed file, an unknown key or a bad value raises
one ``ConfigError`` whose message names the file, the key and what is allowed. Each part owns its settings
dataclasses (``tables.settings``, ``cache.settings`` …); this module knows none of them. A dataclass may define
``validate()`` (raising ``ValueError``), which runs after its fields are converted.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from pipeline_opt.errors import ConfigError, PipelineOptError
from pipeline_opt.units import ByteSize, finite_float, parse_size

T = TypeVar("T")


def read_yaml(path: str | Path) -> dict:
    """The top-level mapping of a YAML file (``{}`` for an empty file); every failure is a ``ConfigError``."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 4]!r}); "
                          "save it as UTF-8") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}: malformed YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level: expected a mapping, got {type(data).__name__}")
    return data


class _UniqueKeyLoader(yaml.SafeLoader):
    """``safe_load`` that refuses a key written twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is written twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load(path: str | Path, cls: type[T]) -> T:
    """Load one YAML file into the dataclass ``cls``; every failure is a ``ConfigError`` naming the file."""
    return build(cls, read_yaml(path), source=str(path))


def build(cls: type[T], data: Any, source: str = "") -> T:
    """``cls`` built from a plain mapping (parsed YAML, JSON, a dict), checked as ``load`` checks a file."""
    try:
        return _build(cls, data, "")
    except ValueError as e:
        raise ConfigError(f"{source}: {e}" if source else str(e)) from None


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'top level'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(map(str, data)) - set(fields))
    if unknown:
        raise ValueError(f"unknown key {_join(where, unknown[0])!r}; allowed: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        key = _join(where, name)
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ValueError(f"missing required key {key!r}")
    try:
        obj = cls(**kwargs)
    except PipelineOptError as e:  # a settings class that checks itself on construction
        raise ValueError(f"{where + ': ' if where else ''}{e}") from None
    if hasattr(obj, "validate"):
        obj.validate()
    return obj


def _convert(tp: Any, value: Any, key: str) -> Any:
    if tp is Any:  # a free-form value (e.g. a factory's keyword arguments), checked by whoever uses it
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, key)
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{key}: {value!r} is not allowed; allowed: {', '.join(map(str, args))}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{key}: expected a list, got {value!r}")
        return [_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): _convert(args[1], v, _join(key, str(k))) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)  # type: ignore[arg-type]
    return _scalar(tp, value, key)


def _scalar(tp: type, value: Any, key: str) -> Any:
    try:
        if tp is ByteSize:
            return ByteSize(parse_size(value))
        if tp is bool and isinstance(value, bool):
            return value
        if tp is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return finite_float(value, "value")  # YAML's .nan and .inf are floats too
        if tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            if isinstance(value, float):
                finite_float(value, "value")  # a name written as .nan is a mistake, not the text "nan"
            return str(value)
    except ValueError as e:
        raise ValueError(f"{key}: {e}") from None
    raise ValueError(f"{key}: expected {tp.__name__}, got {value!r}")


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
