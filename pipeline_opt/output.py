"""Printing operation results: a readable table by default, JSON with ``--json``.

Invariant: ``--json`` output is exactly ``to_jsonable(result)``, so scripts and tests read the same facts a person
sees.
"""
from __future__ import annotations

import dataclasses
import json
import math
from enum import Enum
from pathlib import Path
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, paths, numpy scalars and nested containers → plain JSON values; an object with a ``to_dict()``
    (or, for a sequence of results, ``to_list()``) method chooses its own JSON form."""
    for method in ("to_dict", "to_list"):
        if callable(getattr(obj, method, None)) and not isinstance(obj, type):
            return to_jsonable(getattr(obj, method)())
    if isinstance(obj, Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return obj.item()
    return obj


def emit(result: Any, as_json: bool = False) -> None:
    """Print a result; objects with a ``render()`` method choose their own text form."""
    if result is None:
        return
    if as_json:
        print(json.dumps(to_jsonable(result), indent=2, default=str))
    else:
        print(render(result))


def render(result: Any) -> str:
    """The text form of a result: its own ``render()``, else its facts as key: value lines."""
    return result.render() if hasattr(result, "render") else render_mapping(to_jsonable(result))


def json_lines(result: Any) -> list[str]:
    """One compact JSON line per item of a result that is a list (one per table), else one line."""
    data = to_jsonable(result)
    return [json.dumps(item, default=str) for item in (data if isinstance(data, list) else [data])]


def render_mapping(data: Any, indent: int = 0) -> str:
    """Key: value lines, nested mappings indented; lists of mappings as aligned tables."""
    pad = "  " * indent
    if isinstance(data, dict):
        lines = []
        for k, v in data.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines.append(render_mapping(v, indent + 1))
            else:
                lines.append(f"{pad}{k}: {v}")
        return "\n".join(lines)
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return render_table(data, indent)
    if isinstance(data, list):
        return "\n".join(f"{pad}- {v}" for v in data)
    return f"{pad}{data}"


def render_table(rows: list[dict], indent: int = 0) -> str:
    """Aligned text table of flat rows (nested values shown compactly)."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    pad = "  " * indent
    head = pad + "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    body = [pad + "  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join([head, *body])


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return "" if v is None else str(v)
