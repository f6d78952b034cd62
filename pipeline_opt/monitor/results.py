"""Tolerant readers of ``benchmarks/results/*.json`` for the report.

Invariants: never raise for a missing, empty or malformed file, nor for a shape they do not know — they return
``None``/empty and say why in ``Results.problems``; every extractor looks for its facts by key names anywhere in
the JSON tree (benchmark scripts grow and nest their output), so a renamed wrapper or an extra level still reads.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

EXPECTED = {
    "compaction": "benchmarks/compaction.py",
    "loader": "benchmarks/loader.py",
    "training_memory": "benchmarks/training_memory.py",
    "cache": "benchmarks/cache.py",
}


@dataclass
class Results:
    folder: Path
    data: dict[str, Any] = field(default_factory=dict)  # name → parsed JSON, for files that exist and parse
    missing: list[str] = field(default_factory=list)  # expected names without a file
    problems: dict[str, str] = field(default_factory=dict)  # name → why it could not be read


def load_results(folder: str | Path) -> Results:
    """Every ``*.json`` in ``folder``; the expected ones that are absent are listed in ``missing``."""
    res = Results(Path(folder))
    files = sorted(res.folder.glob("*.json")) if res.folder.is_dir() else []
    for path in files:
        try:
            res.data[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            res.problems[path.stem] = f"{path.name} could not be read: {e}"
    res.missing = [name for name in EXPECTED if name not in res.data and name not in res.problems]
    return res


def walk(obj: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every node of a JSON tree with its path of keys and indices."""
    yield path, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk(v, path + (str(k),))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, path + (i,))


def number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def first_key(record: dict, *patterns: str) -> Optional[str]:
    """The first key of ``record`` (in pattern order) that matches one of the regexes and holds a number."""
    for pattern in patterns:
        for key, value in record.items():
            if re.search(pattern, str(key), re.I) and number(value) is not None:
                return key
    return None


def label_of(record: dict, fallback: str) -> str:
    for key in ("name", "label", "combination", "plan", "config", "policy", "query", "mode", "variant", "reader"):
        if isinstance(record.get(key), (str, int, float)) and not isinstance(record.get(key), bool):
            return str(record[key])
    parts = [f"{k}={v}" for k, v in record.items() if isinstance(v, str)][:3]
    return ", ".join(parts) or fallback


def path_text(path: tuple) -> str:
    return "/".join(str(p) for p in path)


def numeric_leaves(obj: Any, limit: int = 60) -> list[tuple[str, float]]:
    """(path, value) of numeric leaves, for showing a result whose shape no plot knows."""
    out = []
    for path, value in walk(obj):
        if number(value) is not None and path:
            out.append((path_text(path), float(value)))
            if len(out) >= limit:
                break
    return out
