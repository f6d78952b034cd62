"""partition_filter.py: a checked grammar evaluated in Python, so injection has nowhere to go."""
from __future__ import annotations

import pytest

from pipeline_opt.tables.partition_filter import PartitionFilter, PartitionFilterError


@pytest.mark.parametrize("text, values, expected", [
    ("year = 1995", {"year": "1995"}, True),
    ("year >= 1995 AND region IN ('EU', 'US')", {"year": "1996", "region": "US"}, True),
    ("year >= 1995 and region in ('EU')", {"year": "1996", "region": "US"}, False),
    ("year < 1995", {"year": "1994"}, True),
    ("year != 10", {"year": "9"}, True),
    ("region = 'O''Brien'", {"region": "x"}, None),
    ("region = 'it\\'s'", {"region": "it's"}, True),
    ("region IS NULL", {"region": None}, True),
    ("region IS NOT NULL", {"region": None}, False),
    ("`Year` = 2", {"year": "2"}, True),
])
def test_parse_and_match(text, values, expected):
    if expected is None:
        with pytest.raises(PartitionFilterError):
            PartitionFilter.parse(text)
        return
    assert PartitionFilter.parse(text).matches(values) is expected


@pytest.mark.parametrize("text", ["", "year = 1; DROP TABLE t", "year = 1 OR 1=1", "year = (select 1)",
                                  "year = '1'; --", "x = y", "year ==1", "1 = 1"])
def test_anything_outside_the_grammar_is_refused(text):
    with pytest.raises(PartitionFilterError):
        PartitionFilter.parse(text)
