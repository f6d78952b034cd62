"""Shared pieces of the fuzz suite: the hypothesis settings, the hostile values, and the one-line check."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from pipeline_opt.errors import PipelineOptError

# Deterministic in CI (same cases every run) and without per-example deadlines (the machine is shared).
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
FILES = settings(FUZZ, max_examples=80)  # each case writes and reads a file

CASES: Counter = Counter()  # class -> generated cases, reported by test_summary
OUTCOMES: Counter = Counter()  # (class, "read" or "refused") -> cases: a class that only ever reads tests nothing

# Numbers at and beyond every edge: NaN, infinities, signed zero, int64/uint64 edges, bools (ints to Python).
EDGE_NUMBERS = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0, -1, 1, 2**31, 2**32, 2**63 - 1, 2**63,
                                2**64, 2**70, -(2**63), 1e308, 1e-320, True, False])
NUMBERS = st.one_of(EDGE_NUMBERS, st.integers(), st.floats())
HOSTILE_TEXT = st.one_of(
    st.sampled_from(["", " ", "nan", "NaN", "inf", "-inf", "1e999", "-1", "-0", "0x10", "1_000", "١٢٣",
                     "99999999TB", "1.5.5", "1GiB ", "\x00", "10\n", "yesterday", "9" * 400]),
    st.text(max_size=40),
    st.builds(lambda n, u: f"{n}{u}", NUMBERS, st.sampled_from(["", "B", "kb", "MiB", "GB", "TiB", "PB", "XB"])),
)
# Any JSON document, nested a little: what a wrong-shaped file may hold instead of what was expected.
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def one_line(e: PipelineOptError, *names: str) -> str:
    """The error's message, checked to be one non-empty line naming each of ``names``."""
    text = str(e)
    assert text.strip() and "\n" not in text and "\r" not in text, repr(text)
    for name in names:
        assert name in text, (name, text)
    return text


def tree(folder: Path) -> dict:
    """Every file under ``folder`` with its size, mtime and bytes: equal before and after means nothing changed."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def refused(main, argv: list[str], folders: list[Path], capsys) -> str:
    """Run the CLI's ``main(argv)`` in process; checks it exits non-zero with exactly one stderr line, no traceback,
    and leaves every file under ``folders`` as it was. Returns that line."""
    before = [tree(f) for f in folders]
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code != 0, (argv, err)
    assert len(lines) == 1 and "Traceback" not in err, (argv, err)
    assert [tree(f) for f in folders] == before, argv
    return lines[0]
