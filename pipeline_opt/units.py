"""Byte sizes as Spark users write them: plain bytes, SI units (``16MB`` = 16·10⁶) or IEC units (``1GiB`` = 2³⁰),
and the domain checks of plain numbers.

Invariants: ``parse_size`` accepts exactly what ``format_size`` and the shipped configs write, from 0 up to
``MAX_SIZE``; ``finite_float`` and ``bounded_int`` accept only real numbers (never a bool, NaN or infinity) inside
their bounds. Every refusal is a ``BadValueError`` (a ``ConfigError`` and a ``ValueError``) whose one line names the
value and what is allowed.
"""
from __future__ import annotations

import math
import re
from typing import Any

from pipeline_opt.errors import BadValueError

_UNITS = {
    "": 1, "B": 1,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "PIB": 2**50,
    "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_ALLOWED = "bytes or a unit: B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB"
MIB = 2**20
GIB = 2**30
# 1 PiB: more than any file, cache budget, object-store part or GPU this package plans for, and small enough that
# sums of a few thousand such sizes stay inside int64 (numpy, Arrow and Spark's LongType).
MAX_SIZE = 2**50
# Counts (files, requests, layers, workers) beyond this are typing mistakes, and would overflow int64 sums.
MAX_COUNT = 2**40


class ByteSize(int):
    """A byte count written as ``1073741824``, ``1GiB`` or ``16MB`` (config fields of this type accept all three)."""


def parse_size(value: Any) -> int:
    """A byte size in ``0..MAX_SIZE``; raises ``BadValueError`` naming the value and the accepted units."""
    if isinstance(value, bool):
        raise BadValueError(f"{value!r} is not a size; use {_ALLOWED}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadValueError(f"{value!r} is not a size; use {_ALLOWED}")
    if isinstance(value, int):
        return _in_size_range(value, value)
    if str(value).strip().startswith("-"):
        raise BadValueError(f"size {str(value)[:60]!r} is negative; use 0 or more bytes")
    m = _SIZE_RE.match(str(value))
    unit = m.group(2).upper() if m else None
    if not m or unit not in _UNITS:
        raise BadValueError(f"{str(value)[:60]!r} is not a size; use {_ALLOWED}")
    if len(m.group(1)) > 30:  # longer than any size below MAX_SIZE could be written; refuse before float rounding
        raise BadValueError(f"{str(value)[:60]!r} is larger than the largest size allowed, 1 PiB")
    return _in_size_range(value, int(float(m.group(1)) * _UNITS[unit]))


def _in_size_range(value: Any, n: int) -> int:
    if n < 0:
        raise BadValueError(f"size {value!r} is negative; use 0 or more bytes")
    if n > MAX_SIZE:
        raise BadValueError(f"size {value!r} is larger than the largest size allowed, 1 PiB ({MAX_SIZE} bytes)")
    return n


def finite_float(value: Any, what: str = "value", minimum: float | None = None, maximum: float | None = None,
                 positive: bool = False) -> float:
    """``value`` as a finite float in ``[minimum, maximum]`` (``> 0`` too when ``positive``); text is parsed."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadValueError(f"{what} {_shown(value)} is not a number")
    try:
        x = float(value)
    except (ValueError, OverflowError):
        raise BadValueError(f"{what} {_shown(value)} is not a number") from None
    if not math.isfinite(x):
        raise BadValueError(f"{what} {_shown(value)} must be a finite number")
    if positive and not x > 0:
        raise BadValueError(f"{what} {_shown(value)} must be positive")
    if (minimum is not None and x < minimum) or (maximum is not None and x > maximum):
        raise BadValueError(f"{what} {_shown(value)} is outside {_range(minimum, maximum)}")
    return x


def bounded_int(value: Any, what: str = "value", minimum: int = 0, maximum: int = MAX_COUNT) -> int:
    """``value`` as an int in ``[minimum, maximum]``; text must be a whole number (``"3"``, not ``"3.5"``)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadValueError(f"{what} {_shown(value)} is not a whole number")
    try:
        n = int(value)
    except ValueError:
        raise BadValueError(f"{what} {_shown(value)} is not a whole number") from None
    if not minimum <= n <= maximum:
        raise BadValueError(f"{what} {_shown(value)} is outside {_range(minimum, maximum)}")
    return n


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _range(lo: float | None, hi: float | None) -> str:
    return f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"


def format_size(n: float) -> str:
    """Human-readable binary size, e.g. ``1.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
