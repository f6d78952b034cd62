"""Byte sizes as Spark users write them: plain bytes, SI units (``16MB`` = 16·10⁶) or IEC units (``1GiB`` = 2³⁰).

Invariant: ``parse_size`` accepts exactly what ``format_size`` and the shipped configs write, and its error names
the value and the accepted units.
"""
from __future__ import annotations

import re
from typing import Any

_UNITS = {
    "": 1, "B": 1,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
    "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
MIB = 2**20
GIB = 2**30


class ByteSize(int):
    """A byte count written as ``1073741824``, ``1GiB`` or ``16MB`` (config fields of this type accept all three)."""


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
