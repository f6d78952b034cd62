"""Typed configuration loaded from ``conf/*.yml``.

Invariants: a loaded config is fully typed and validated; a malformed file, an unknown key or a bad value raises
one ``ConfigError`` whose message names the file, the key and what is allowed. Sizes accept plain bytes or units
(``16MB`` = 16·10⁶ bytes, ``16MiB`` = 16·2²⁰ bytes), as Spark users write them.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from pipeline_opt.errors import ConfigError

_UNITS = {
    "": 1, "B": 1,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
    "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


class ByteSize(int):
    """A byte count written as ``1073741824``, ``1GiB`` or ``16MB``."""


def parse_size(value: Any) -> int:
    """Parse a byte size; raises ``ValueError`` naming the value and the accepted units."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return value
    m = _SIZE_RE.match(str(value))
    unit = m.group(2).upper() if m else None
    if not m or unit not in _UNITS:
        raise ValueError(f"{value!r} is not a size; use bytes or a unit: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB")
    return int(float(m.group(1)) * _UNITS[unit])


def format_size(n: float) -> str:
    """Human-readable binary size, e.g. ``1.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- conf/tables.yml
@dataclass
class TableSettings:
    name: str
    path: str
    min_file_size: Optional[ByteSize] = None  # None: the defaults' window
    max_file_size: Optional[ByteSize] = None
    zorder_by: list[str] = field(default_factory=list)
    cluster_by: list[str] = field(default_factory=list)
    partition_filter: Optional[str] = None
    vacuum_retention_hours: Optional[int] = None
    target_file_size: Optional[ByteSize] = None  # None: adaptive to table size (tables.plan.adaptive_target)

    def validate(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", self.name):
            raise ValueError(f"tables: name {self.name!r} may hold only letters, digits, '_', '.' and '-'")
        bad = [c for c in self.zorder_by + self.cluster_by if not c or re.search(r"[\x00-\x1f`;]", c)]
        if bad:
            raise ValueError(f"tables.{self.name}: column name {bad[0]!r} is not allowed")
        if self.zorder_by and self.cluster_by:
            raise ValueError(f"tables.{self.name}: use zorder_by or cluster_by, not both")


@dataclass
class TableDefaults:
    min_file_size: ByteSize = ByteSize(16 * 10**6)
    max_file_size: ByteSize = ByteSize(10**9)
    vacuum_retention_hours: int = 168
    target_file_size: Optional[ByteSize] = None  # None: adaptive to table size
    min_bin_files: int = 4  # a bin whose output stays below the window is rewritten only with this many files
    max_deleted_rows_ratio: float = 0.1  # files with a larger deleted-rows share are rewritten
    batch_bytes: ByteSize = ByteSize(2 * 10**9)  # bytes of small files per commit (a failure loses one batch)


@dataclass
class TablesConfig:
    defaults: TableDefaults = field(default_factory=TableDefaults)
    tables: list[TableSettings] = field(default_factory=list)

    def validate(self) -> None:
        names = [t.name for t in self.tables]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tables: duplicate table names {dupes}")
        if self.defaults.min_file_size > self.defaults.max_file_size:
            raise ValueError("defaults: min_file_size is larger than max_file_size")
        for t in [None, *self.tables]:
            lo, hi, target = self.window(t)
            where = f"tables.{t.name}" if t else "defaults"
            if lo > hi:
                raise ValueError(f"{where}: min_file_size {lo} is larger than max_file_size {hi}")
            if target is not None and not lo <= target <= hi:
                raise ValueError(f"{where}: target_file_size {target} is outside the window [{lo}, {hi}]")

    def window(self, t: "Optional[TableSettings]" = None) -> tuple[int, int, Optional[int]]:
        """(min, max, explicit target or None) for table ``t``, its own settings winning over the defaults."""
        d = self.defaults
        pick = lambda own, default: default if t is None or own is None else own  # noqa: E731
        return (int(pick(t and t.min_file_size, d.min_file_size)), int(pick(t and t.max_file_size, d.max_file_size)),
                pick(t and t.target_file_size, d.target_file_size))

    def table(self, name: str) -> TableSettings:
        for t in self.tables:
            if t.name == name:
                return t
        raise ConfigError(f"unknown table {name!r}; configured: {', '.join(t.name for t in self.tables) or 'none'}")


# ---------------------------------------------------------------- conf/cache.yml
@dataclass
class CacheConfig:
    policy: str = "learned"
    fallback: str = "s3fifo"
    budget: ByteSize = ByteSize(2 * 2**30)
    spark_table_cache: bool = True
    disk_cache: bool = True
    loader_file_cache_dir: Optional[str] = None


# ---------------------------------------------------------------- conf/training.yml
@dataclass
class ModelSettings:
    kind: Literal["mlp", "gpt"] = "mlp"
    hidden: int = 256
    layers: int = 2
    heads: int = 4
    vocab: int = 32000
    seq_len: int = 128
    sparse_embeddings: bool = False  # gpt: nn.Embedding(sparse=True) + SparseAdam for the embedding


@dataclass
class TrainingConfig:
    """conf/training.yml. ``plan: auto`` lets the planner pick precision/checkpointing/optimizer under
    ``budget_gib``; ``fixed`` uses the three keys (with ``budget_gib`` set, a budget guard steps down on OOM)."""

    table: str = "lakehouse/lineitem"
    features: list[str] = field(default_factory=list)
    label: Optional[str] = None
    batch_size: int = 1024
    steps: int = 100
    lr: float = 1e-3
    seed: int = 0
    precision: str = "fp32"
    checkpointing: str = "none"
    optimizer: str = "adamw"
    budget_gib: Optional[float] = None
    num_workers: int = 0
    num_processes: int = 1
    checkpoint_dir: Optional[str] = None
    model: ModelSettings = field(default_factory=ModelSettings)
    plan: Literal["auto", "fixed"] = "fixed"
    compile: bool = False
    checkpoint_every: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    token_column: Optional[str] = None  # gpt: an array column of token ids

    def validate(self) -> None:
        if self.plan == "auto" and self.budget_gib is None:
            raise ValueError("plan: 'auto' needs budget_gib")
        for key in ("batch_size", "steps", "num_processes"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: {getattr(self, key)!r} must be at least 1")


# ---------------------------------------------------------------- conf/monitor.yml
@dataclass
class MonitorConfig:
    metrics_table: str = "lakehouse/_metrics"
    memory_ratio: float = 0.95
    memory_minutes: float = 5
    hit_rate_ratio: float = 0.80
    hit_rate_minutes: float = 10
    latency_ratio: float = 1.50
    latency_minutes: float = 3
    rollout_steps: list[int] = field(default_factory=lambda: [10, 25, 50, 100])
    confidence: float = 0.95
    prometheus_port: Optional[int] = None
    config_store: str = "lakehouse/_configs"
    ab_margin: float = 0.05  # candidate may be at most this share worse and still count as "not worse"
    ab_min_units: int = 20  # units per arm before a rollout stage is judged
    ab_resamples: int = 2000

    def validate(self) -> None:
        for key in ("memory_ratio", "hit_rate_ratio", "latency_ratio"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key}: {getattr(self, key)!r} must be > 0")
        for key in ("memory_minutes", "hit_rate_minutes", "latency_minutes"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}: {getattr(self, key)!r} must be >= 0")
        steps = self.rollout_steps
        if not steps or steps != sorted(set(steps)) or steps[0] <= 0 or steps[-1] != 100:
            raise ValueError(f"rollout_steps: {steps!r} must rise strictly from above 0 and end at 100")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence: {self.confidence!r} must be in [0.5, 1)")
        if not 0 <= self.ab_margin < 1:
            raise ValueError(f"ab_margin: {self.ab_margin!r} must be in [0, 1)")
        if self.ab_min_units < 2 or self.ab_resamples < 100:
            raise ValueError(f"ab_min_units {self.ab_min_units!r} must be >= 2 and "
                             f"ab_resamples {self.ab_resamples!r} >= 100")


def load(path: str | Path, cls: type) -> Any:
    """Load one YAML file into the dataclass ``cls``; every failure is a ``ConfigError`` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}: malformed YAML{where}: {getattr(e, 'problem', e)}") from None
    try:
        return _build(cls, data, "")
    except ValueError as e:
        raise ConfigError(f"{p}: {e}") from None


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
    obj = cls(**kwargs)
    if hasattr(obj, "validate"):
        obj.validate()
    return obj


def _convert(tp: Any, value: Any, key: str) -> Any:
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
        return _build(tp, value, key)
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
            return float(value)
        if tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    except ValueError as e:
        raise ValueError(f"{key}: {e}") from None
    raise ValueError(f"{key}: expected {tp.__name__}, got {value!r}")


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


# Which dataclass each shipped file under conf/ holds (the test suite loads every one of them).
SCHEMAS: dict[str, type] = {
    "tables.yml": TablesConfig,
    "cache.yml": CacheConfig,
    "training.yml": TrainingConfig,
    "monitor.yml": MonitorConfig,
}


def load_conf(name: str, conf_dir: str | Path = "conf") -> Any:
    """Load ``conf_dir/name`` with its schema from ``SCHEMAS``."""
    if name not in SCHEMAS:
        raise ConfigError(f"{name}: no schema for this file; known: {', '.join(SCHEMAS)}")
    return load(Path(conf_dir) / name, SCHEMAS[name])
