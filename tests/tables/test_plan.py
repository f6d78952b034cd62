"""plan.py: the adaptive target, candidates, paying bins and reasons (log-only tables, no Spark)."""
from __future__ import annotations

import pytest

from pipeline_opt.delta import read_snapshot
from pipeline_opt.tables.partition_filter import PartitionFilter, PartitionFilterError
from pipeline_opt.tables.plan import adaptive_target, plan_compaction
from pipeline_opt.tables.settings import Window, WindowError
from pipeline_opt.units import MIB
from tests.harness.synthetic_log import write_synthetic_log

W = Window(16 * 10**6, 10**9)


@pytest.mark.parametrize("table_bytes", [0, 10**6, 300 * 10**6, 50 * 10**9, 5 * 10**12])
def test_adaptive_target_stays_in_window_and_is_power_of_two_mib(table_bytes):
    target, rule = adaptive_target(table_bytes, W)
    assert W.min_size <= target <= W.max_size and rule
    assert target in (W.max_size, 4 * W.min_size) or (target % MIB == 0 and (target // MIB) & (target // MIB - 1) == 0)


def test_adaptive_target_grows_with_table_and_reaches_the_ceiling():
    targets = [adaptive_target(b, W)[0] for b in (10**8, 10**10, 10**11, 10**13)]
    assert targets == sorted(targets) and targets[0] == 4 * W.min_size and targets[-1] == W.max_size


def test_fixed_target_wins_and_bad_windows_are_refused():
    assert adaptive_target(10**12, Window(10, 100, target=50))[0] == 50
    with pytest.raises(WindowError, match="min"):
        Window(200, 100)
    with pytest.raises(WindowError, match="outside the window"):
        Window(10, 100, target=101)


def _plan(tmp_path, sizes, parts=None, **kw):
    path = write_synthetic_log(tmp_path / "t", sizes, parts, checkpoint=False)
    return plan_compaction(str(path), kw.pop("window", W), **kw)


def test_files_inside_the_window_are_never_candidates(tmp_path):
    sizes = [17 * 10**6] * 10 + [900 * 10**6] * 3 + [2 * 10**9]
    plan = _plan(tmp_path, sizes)
    assert plan.bytes_to_rewrite == 0 and not plan.to_rewrite
    assert "healthy" in plan.partitions[0].reason


def test_small_files_are_packed_up_to_the_target(tmp_path):
    plan = _plan(tmp_path, [5 * 10**6] * 100 + [400 * 10**6], window=Window(16 * 10**6, 10**9, target=64 * MIB))
    bins = plan.partitions[0].bins
    assert sum(b.files for b in bins) == 100 and all(b.bytes <= 64 * MIB for b in bins)
    assert plan.files_to_rewrite == 100 and plan.partitions[0].candidates == 100


def test_a_bin_pays_only_with_enough_files_or_bytes(tmp_path):
    plan = _plan(tmp_path, [10**6, 10**6, 10**6, 10**7, 10**7, 10**7, 10**6, 10**6, 10**6, 10**6],
                 ["a", "a", "a", "b", "b", "c", "d", "d", "d", "d"], min_bin_files=4)
    by = {p.values["part"]: p for p in plan.partitions}
    assert not by["a"].rewrite and "waits for 4" in by["a"].reason      # 3 MB in 3 files: waits
    assert by["b"].rewrite and "window" in by["b"].bins[0].reason      # 20 MB: lands in the window
    assert not by["c"].rewrite and "single file" in by["c"].reason
    assert by["d"].rewrite                                             # 4 files merge even below the floor


def test_partition_filter_selects_partitions(tmp_path):
    parts = [str(1990 + i % 8) for i in range(80)]
    plan = _plan(tmp_path, [10**6] * 80, parts, partition_filter=PartitionFilter.parse("part >= 1995"))
    assert sorted(p.values["part"] for p in plan.partitions) == ["1995", "1996", "1997"]
    with pytest.raises(PartitionFilterError, match="not a partition column"):
        _plan(tmp_path / "x", [10**6] * 4, ["a"] * 4, partition_filter=PartitionFilter.parse("year = 1"))


def test_files_with_many_deleted_rows_are_rewritten(tmp_path):
    path = write_synthetic_log(tmp_path / "t", [100 * 10**6, 100 * 10**6], checkpoint=False)
    files = read_snapshot(str(path))
    files.deleted[0] = files.rows[0] // 2
    plan = plan_compaction(str(path), W, files=files)
    assert plan.partitions[0].rewrite and plan.partitions[0].candidates == 1
    assert plan.partitions[0].bins[0].reason == "purges deleted rows"


def test_render_explains_each_partition(tmp_path):
    text = _plan(tmp_path, [10**6] * 8 + [10**8], ["x"] * 8 + ["y"]).render()
    assert "REWRITE part=x" in text and "skip    part=y: healthy" in text and "target" in text
