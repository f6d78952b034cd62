"""Ranking configured tables by expected compaction benefit, on real Delta tables written here."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from pipeline_opt.app.cli import main
from pipeline_opt.app.jobs import run_job
from pipeline_opt.errors import ConfigError, TableNotFoundError


def _table(path, appends: int, rows: int) -> str:
    for i in range(appends):
        data = pa.table({"id": pa.array(range(i * rows, (i + 1) * rows), pa.int64()),
                         "text": pa.array([f"row {j} " * 8 for j in range(rows)])})
        write_deltalake(str(path), data, mode="append")
    return str(path)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    paths = {"fragmented": _table(root / "fragmented", 12, 10), "busy": _table(root / "busy", 8, 10),
             "healthy": _table(root / "healthy", 1, 5000)}
    conf = root / "tables.yml"
    conf.write_text("defaults:\n  min_file_size: 8KB\n  max_file_size: 1GB\n  min_bin_files: 4\ntables:\n" + "".join(
        f"  - name: {n}\n    path: {p}\n" for n, p in paths.items()))
    return root, conf, paths


def test_fragmented_tables_rank_first_and_healthy_ones_cost_nothing(lake):
    _, conf, _ = lake
    result = run_job("schedule", {"config": str(conf)})
    by_name = {t.name: t for t in result.tables}
    assert result.to_compact == ["fragmented", "busy"]  # equal shares: more files to merge first
    assert by_name["fragmented"].small_file_share == 1.0 and by_name["fragmented"].files_to_rewrite == 12
    healthy = by_name["healthy"]
    assert (healthy.compact_now, healthy.score, healthy.files_to_rewrite) == (False, 0.0, 0)
    assert "healthy" in healthy.reason


def test_access_log_weights_by_reads_and_defers_unread_tables(lake):
    root, conf, paths = lake
    log = root / "access.log"
    log.write_text("\n".join(['{"table": "busy"}'] * 30 + [paths["busy"], "healthy"]))
    result = run_job("schedule", {"config": str(conf), "access_log": str(log)})
    by_name = {t.name: t for t in result.tables}
    assert result.to_compact == ["busy"] and by_name["busy"].reads == 31
    assert by_name["fragmented"].reads == 0 and "deferred" in by_name["fragmented"].reason
    assert result.tables[0].name == "busy"


def test_unknown_table_and_missing_path_are_clear_errors(lake, tmp_path, capsys):
    _, conf, _ = lake
    with pytest.raises(ConfigError, match="unknown table 'nope'"):
        run_job("schedule", {"config": str(conf), "table": ["nope"]})
    assert main(["schedule", "--config", str(conf), "--table", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0]
    bad = tmp_path / "bad.yml"
    bad.write_text(f"tables:\n  - name: gone\n    path: {tmp_path / 'gone'}\n")
    with pytest.raises(TableNotFoundError, match="gone"):
        run_job("schedule", {"config": str(bad)})


def test_cli_json(lake, capsys):
    _, conf, _ = lake
    assert main(["schedule", "--config", str(conf), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in out["tables"]][-1] == "healthy"
