"""A damaged Delta log is refused with the damage named: a truncated commit, a gap, a missing checkpoint."""
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
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


def test_missing_checkpoint_is_read_from_the_commits_like_spark_and_named_when_they_are_gone(tmp_path):
    path = _table(tmp_path / "t", checkpoint=True)
    write_deltalake(path, pa.table({"x": [9]}), mode="append")
    _log(tmp_path / "t", 3, "checkpoint.parquet").unlink()
    log_before = sorted(p.name for p in (tmp_path / "t" / "_delta_log").iterdir())
    with pytest.warns(UserWarning, match="checkpoint 3 named by _last_checkpoint is missing; read by replaying"):
        snap = read_snapshot(path)
    assert (snap.version, snap.num_rows) == (4, 5)
    assert sorted(pa.concat_tables(pq.read_table(snap.file_uri(f)) for f in snap.files)["x"].to_pylist()) \
        == [0, 1, 2, 3, 9]
    result = subprocess.run([sys.executable, "-m", "pipeline_opt.app.cli", "health", path], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "files 5" in result.stdout
    assert result.stderr.strip().splitlines() == [f"pipeline-opt health: warning: {path}: checkpoint 3 named by "
                                                  "_last_checkpoint is missing; read by replaying the JSON commits, "
                                                  "as Spark does"]
    assert sorted(p.name for p in (tmp_path / "t" / "_delta_log").iterdir()) == log_before  # nothing written
    _log(tmp_path / "t", 0).unlink()
    with pytest.raises(DeltaLogError, match=r"checkpoint 3 named by _last_checkpoint is missing; log replay from "
                                            r"JSON would need commits 0–3 \(missing: 0\)"):
        table_health(path)


def test_a_healthy_table_still_reads(tmp_path):
    path = _table(tmp_path / "t", checkpoint=True)
    assert table_health(path).stats.files == 4
