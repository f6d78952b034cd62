"""A damaged Delta log is refused with the damage named: a truncated commit, a gap, a missing checkpoint."""
import subprocess
import sys

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from pipeline_opt.delta import read_snapshot
from pipeline_opt.errors import DeltaLogError
from pipeline_opt.tables.health import table_health


def _table(path, commits=4, checkpoint=False) -> str:
    for i in range(commits):
        write_deltalake(str(path), pa.table({"x": [i]}), mode="append")
    if checkpoint:
        DeltaTable(str(path)).create_checkpoint()
    return str(path)


def _log(path, version: int, suffix="json"):
    return path / "_delta_log" / f"{version:020d}.{suffix}"


def test_newest_commit_cut_mid_line_is_named(tmp_path):
    path = _table(tmp_path / "t")
    commit = _log(tmp_path / "t", 3)
    commit.write_bytes(commit.read_bytes()[:50])
    with pytest.raises(DeltaLogError, match=r"damaged: commit 3 is truncated or corrupt \(line 1 is not JSON\)"):
        table_health(path)
    result = subprocess.run([sys.executable, "-m", "pipeline_opt.app.cli", "health", path], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"pipeline-opt health: error: {path}: the Delta log is damaged: "
                                                  "commit 3 is truncated or corrupt (line 1 is not JSON)"]


def test_gap_in_the_commits_is_named(tmp_path):
    path = _table(tmp_path / "t", commits=5)
    _log(tmp_path / "t", 1).unlink()
    _log(tmp_path / "t", 2).unlink()
    with pytest.raises(DeltaLogError, match="commits 1–2 are missing from the log, which holds commits up to 4"):
        read_snapshot(path)


def test_missing_checkpoint_names_the_commits_a_replay_needs(tmp_path):
    path = _table(tmp_path / "t", checkpoint=True)
    _log(tmp_path / "t", 3, "checkpoint.parquet").unlink()
    with pytest.raises(DeltaLogError, match=r"checkpoint 3 named by _last_checkpoint is missing; log replay from "
                                            r"JSON would need commits 0–3 \(all present\)"):
        table_health(path)
    _log(tmp_path / "t", 0).unlink()
    with pytest.raises(DeltaLogError, match=r"commits 0–3 \(missing: 0\)"):
        table_health(path)


def test_a_healthy_table_still_reads(tmp_path):
    path = _table(tmp_path / "t", checkpoint=True)
    assert table_health(path).stats.files == 4
