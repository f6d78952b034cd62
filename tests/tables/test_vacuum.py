"""VACUUM safety on real Delta tables: time travel inside the retention survives, unsafe retention is refused."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable, write_deltalake

from pipeline_opt.app.cli import main
from pipeline_opt.errors import NotADeltaTableError, TableNotFoundError
from pipeline_opt.tables.vacuum import RETENTION_CHECK_CONF, UnsafeRetentionError, vacuum

DAY_MS = 24 * 3600 * 1000


def _write_versions(path: Path, count: int = 4) -> None:
    """Versions 0..count-1, each an overwrite holding ids v*10 … v*10+9 (written by delta-rs, so no JVM caches it)."""
    for v in range(count):
        data = pa.table({"id": pa.array(range(v * 10, v * 10 + 10), pa.int64()), "v": pa.array([v] * 10, pa.int64())})
        write_deltalake(str(path), data, mode="overwrite" if v else "error")


def _files_of(path: Path, version: int) -> set[str]:
    return {Path(uri).name for uri in DeltaTable(str(path), version=version).file_uris()}


def _backdate_removals(path: Path, version: int, days: int = 10) -> set[str]:
    """Make the files removed by commit ``version`` look removed (and written) ``days`` ago; returns their names."""
    log = path / "_delta_log" / f"{version:020d}.json"
    old_ms = int(time.time() * 1000) - days * DAY_MS
    removed, lines = set(), []
    for line in log.read_text().splitlines():
        action = json.loads(line)
        if "remove" in action:
            action["remove"]["deletionTimestamp"] = old_ms
            removed.add(Path(action["remove"]["path"]).name)
        lines.append(json.dumps(action))
    log.write_text("\n".join(lines) + "\n")
    for name in removed:
        os.utime(path / name, (old_ms / 1000, old_ms / 1000))
    return removed


def assert_version_holds(spark, path: Path, version: int, ids: range) -> None:
    df = spark.read.format("delta").option("versionAsOf", version).load(str(path)).select("id")
    assert_df_equality(df, spark.range(ids.start, ids.stop), ignore_row_order=True, ignore_nullable=True)


def test_default_vacuum_keeps_every_version_inside_retention(spark, tmp_path):
    _write_versions(tmp_path / "t")
    dry = vacuum(spark, str(tmp_path / "t"))
    done = vacuum(spark, str(tmp_path / "t"), dry_run=False)
    assert (dry.dry_run, dry.files, dry.retention_hours) == (True, 0, 168.0)
    assert done.files == 0
    for v in range(4):
        assert_version_holds(spark, tmp_path / "t", v, range(v * 10, v * 10 + 10))


def test_vacuum_deletes_only_files_no_retained_version_needs(spark, tmp_path):
    table = tmp_path / "t"
    _write_versions(table)
    v0_files = _files_of(table, 0)
    assert _backdate_removals(table, 1) == v0_files

    dry = vacuum(spark, str(table))
    assert {Path(p).name for p in dry.sample} == v0_files and dry.files == len(v0_files)
    assert dry.bytes == sum((table / f).stat().st_size for f in v0_files) > 0
    assert all((table / f).exists() for f in v0_files), "a dry run deleted files"

    done = vacuum(spark, str(table), dry_run=False)
    assert (done.dry_run, done.files, done.bytes) == (False, dry.files, dry.bytes)
    assert not any((table / f).exists() for f in v0_files)
    for v in (1, 2, 3):  # versions whose files were removed inside the retention still read in full
        assert_version_holds(spark, table, v, range(v * 10, v * 10 + 10))
    with pytest.raises(Exception):  # its files are gone
        spark.read.format("delta").option("versionAsOf", 0).load(str(table)).collect()


def test_retention_below_seven_days_is_refused_without_the_flag(spark, tmp_path):
    _write_versions(tmp_path / "t", 2)
    before = spark.conf.get(RETENTION_CHECK_CONF, None)
    with pytest.raises(UnsafeRetentionError, match="167 hours.*--i-know-retention-is-unsafe"):
        vacuum(spark, str(tmp_path / "t"), retention_hours=167)
    assert spark.conf.get(RETENTION_CHECK_CONF, None) == before


def test_unsafe_flag_relaxes_delta_check_only_within_the_run(spark, tmp_path):
    table = tmp_path / "t"
    _write_versions(table, 3)
    before = spark.conf.get(RETENTION_CHECK_CONF, None)
    dry = vacuum(spark, str(table), retention_hours=0, allow_unsafe=True)
    assert dry.retention_check_relaxed and dry.files == len(_files_of(table, 0)) + len(_files_of(table, 1))
    assert spark.conf.get(RETENTION_CHECK_CONF, None) == before
    assert_version_holds(spark, table, 0, range(10))  # the dry run deleted nothing


def test_bad_paths_raise_named_errors(spark, tmp_path):
    with pytest.raises(TableNotFoundError, match="missing"):
        vacuum(spark, str(tmp_path / "missing"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(NotADeltaTableError, match="plain"):
        vacuum(spark, str(tmp_path / "plain"))


def test_cli_refuses_unsafe_retention_with_one_line(spark, tmp_path, capsys):
    _write_versions(tmp_path / "t", 1)
    assert main(["vacuum", str(tmp_path / "t"), "--retention-hours", "24", "--execute"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "24 hours" in err[0]


def test_cli_dry_run_json(spark, tmp_path, capsys):
    _write_versions(tmp_path / "t", 2)
    assert main(["vacuum", str(tmp_path / "t"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["dry_run"], out["files"], out["retention_hours"]) == (True, 0, 168.0)
