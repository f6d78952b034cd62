"""Sizes and numbers: every hostile value parses to a value inside its domain or raises one ``BadValueError`` line.

Generated cases per class (``max_examples``, deterministic): sizes 300, floats 150, ints 150.
"""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline_opt.errors import BadValueError, ConfigError
from pipeline_opt.units import MAX_COUNT, MAX_SIZE, bounded_int, finite_float, parse_size
from tests.fuzz.hostile import CASES, FUZZ, HOSTILE_TEXT, JSON, NUMBERS, one_line

SIZE_INPUTS = st.one_of(HOSTILE_TEXT, NUMBERS, JSON)


@FUZZ
@given(SIZE_INPUTS)
def test_sizes_parse_in_range_or_refuse_in_one_line(value):
    CASES["sizes"] += 1
    try:
        n = parse_size(value)
    except BadValueError as e:
        one_line(e)
        return
    assert type(n) is int and 0 <= n <= MAX_SIZE, (value, n)


@FUZZ
@given(st.integers(min_value=0, max_value=MAX_SIZE), st.sampled_from([("", 1), ("B", 1), ("KiB", 2**10),
                                                                      ("MB", 10**6), ("GiB", 2**30)]))
def test_sizes_in_range_are_read_exactly(n, unit):
    CASES["sizes"] += 1
    suffix, factor = unit
    if n * factor <= MAX_SIZE:
        assert parse_size(f"{n}{suffix}") == n * factor


@pytest.mark.parametrize("bad, says", [
    ("99999999TB", "larger than the largest size allowed, 1 PiB"), ("-5GiB", "negative"), (-1, "negative"),
    ("nan", "is not a size"), (math.inf, "is not a size"), ("", "is not a size"), ("garbage", "is not a size"),
    (True, "is not a size"), (2**64, "larger than"),
])
def test_named_bad_sizes(bad, says):
    with pytest.raises(ConfigError, match=says) as e:
        parse_size(bad)
    assert isinstance(e.value, ValueError)  # config loading and flags add the key or flag to ValueErrors
    one_line(e.value, repr(bad)[:20] if not isinstance(bad, str) else bad[:20])


@FUZZ
@given(st.one_of(NUMBERS, HOSTILE_TEXT, JSON), st.booleans())
def test_finite_floats_are_finite_and_in_bounds(value, positive):
    CASES["floats"] += 1
    try:
        x = finite_float(value, "ratio", minimum=-1.0, maximum=1.0, positive=positive)
    except BadValueError as e:
        one_line(e, "ratio")
        return
    assert math.isfinite(x) and -1.0 <= x <= 1.0 and (x > 0 or not positive)
    assert not isinstance(value, bool)


@FUZZ
@given(st.one_of(NUMBERS, HOSTILE_TEXT, JSON))
def test_bounded_ints_are_whole_and_in_bounds(value):
    CASES["ints"] += 1
    try:
        n = bounded_int(value, "layers", minimum=1, maximum=MAX_COUNT)
    except BadValueError as e:
        one_line(e, "layers")
        return
    assert type(n) is int and 1 <= n <= MAX_COUNT and not isinstance(value, (bool, float))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, True, "nan", "1e999", None, [1]])
def test_non_finite_and_non_numbers_are_refused(bad):
    with pytest.raises(BadValueError):
        finite_float(bad)
    with pytest.raises(BadValueError):
        bounded_int(bad)
