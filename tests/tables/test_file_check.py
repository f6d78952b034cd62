"""health --check-files: referenced data files are looked up in storage; a missing one fails with one line."""
from pathlib import Path

import fsspec
import pyarrow as pa
from deltalake import write_deltalake

from pipeline_opt.app.cli import main
from pipeline_opt.delta import read_snapshot
from pipeline_opt.tables.file_check import check_files


def _table(path: Path, commits: int = 4) -> Path:
    for i in range(commits):
        write_deltalake(path, pa.table({"id": list(range(i * 10, i * 10 + 10))}), mode="append")
    return path


def test_all_files_present_passes_and_says_how_many_were_checked(tmp_path, capsys):
    table = _table(tmp_path / "t")
    assert main(["health", str(table), "--check-files"]) == 0
    assert "files checked: all 4 referenced data files, 0 missing" in capsys.readouterr().out


def test_a_missing_file_fails_with_one_line_naming_it(tmp_path, capsys):
    table = _table(tmp_path / "t")
    gone = sorted(read_snapshot(str(table)).paths)[0]
    (table / gone).unlink()
    log_before = sorted(p.name for p in (table / "_delta_log").iterdir())
    rc = main(["health", str(table), "--check-files"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1
    assert "1 of 4 data files that version 3 references are missing" in err[0] and gone in err[0]
    assert sorted(p.name for p in (table / "_delta_log").iterdir()) == log_before  # nothing written
    assert main(["health", str(table)]) == 0  # without the flag, health reads the log only


def test_object_stores_are_sampled():
    store = fsspec.filesystem("memory")
    paths = [f"part-{i:03d}.parquet" for i in range(50)]
    for p in paths[1:]:  # the first one is missing
        store.pipe(f"/sampled/{p}", b"x")
    check = check_files("memory://sampled", paths, sample=10)
    assert check.checked == 10 and check.referenced == 50 and check.sampled
    assert set(check.missing) <= {paths[0]}
    full = check_files("memory://sampled", paths, sample=50)
    assert full.missing == [paths[0]] and not full.sampled
