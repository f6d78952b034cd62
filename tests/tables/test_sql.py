"""Safe SQL for path-addressed Delta tables: quoting, and relative paths that Delta still reads as paths."""
import os

import pytest

from pipeline_opt.sql import UnsafeNameError, delta_ref, partition_predicate, quote_ident


def test_relative_path_becomes_absolute_and_is_readable(spark, tmp_path, monkeypatch):
    spark.range(3).write.format("delta").save(str(tmp_path / "t"))
    monkeypatch.chdir(tmp_path)
    assert delta_ref("t") == f"delta.`{os.path.join(str(tmp_path), 't')}`"
    assert spark.sql(f"SELECT count(*) AS n FROM {delta_ref('t')}").first().n == 3


def test_uris_are_kept_and_backticks_doubled():
    assert delta_ref("s3://b/t") == "delta.`s3://b/t`"
    assert quote_ident("a`b; DROP") == "`a``b; DROP`"
    assert partition_predicate({"y": "1'; --", "z": None}) == "`y` = '1\\'; --' AND `z` IS NULL"


@pytest.mark.parametrize("bad", ["", "a\nb", "x\x00"])
def test_control_characters_are_refused(bad):
    with pytest.raises(UnsafeNameError):
        quote_ident(bad)
