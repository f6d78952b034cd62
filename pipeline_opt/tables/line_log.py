"""Line logs that people and jobs write by hand or by script: one entry per line, or one JSON object per line.

Invariants: blank lines and lines starting with ``#`` are skipped; a line starting with ``{`` is a JSON object whose
first truthy value among ``keys`` is the entry; any other line is the entry itself, stripped. Errors name the file
and the line.
"""
from __future__ import annotations

import json
from pathlib import Path

from pipeline_opt.errors import PipelineOptError


def read_line_log(path: str | Path, what: str, keys: tuple[str, ...]) -> list[tuple[int, object]]:
    """``(line number, entry)`` for every entry of the log at ``path`` (``what`` names it in errors)."""
    p = Path(path)
    if not p.is_file():
        raise PipelineOptError(f"{path}: {what} not found")
    wanted = " or ".join(repr(k) for k in keys)
    out: list[tuple[int, object]] = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        entry: object = line
        if line.startswith("{"):
            try:
                record = json.loads(line)
                entry = next((record[k] for k in keys if record.get(k)), None)
            except json.JSONDecodeError:  # a line opening with '{' that parses is always an object
                entry = None
            if entry is None:
                raise PipelineOptError(f"{path}:{n}: expected a JSON object with {wanted}")
        out.append((n, entry))
    return out
