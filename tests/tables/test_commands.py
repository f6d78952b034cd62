"""``pipeline-opt compact``: bad input gives one clear error, exit 2 and nothing written; --dry-run --json."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from pipeline_opt.app.cli import main


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "t"
    for i in range(6):
        write_deltalake(str(path), pa.table({"id": np.arange(10) + 10 * i, "g": ["a", "b"] * 5}),
                        mode="append", partition_by=["g"])
    return path


def _log(path):
    return sorted(p.name for p in (path / "_delta_log").iterdir())


def _config(tmp_path, text):
    conf = tmp_path / "tables.yml"
    conf.write_text(text)
    return str(conf)


@pytest.mark.parametrize("argv, message", [
    (["{tmp}/missing"], "no such path"),
    (["{tmp}"], "not a Delta table"),
    (["{table}", "--min-file-size", "2GB", "--max-file-size", "1GB"], "at most max"),
    (["{table}", "--target-file-size", "2GB"], "outside the window"),
    (["{table}", "--target-file-size", "1MB"], "outside the window"),
    (["{table}", "--partition-filter", "g = 'a'; DROP TABLE t"], "cannot read"),
    (["{table}", "--partition-filter", "id = 3"], "not a partition column"),
    (["{table}", "--zorder-by", "id`; DROP"], "cannot order by"),
    (["{table}", "--zorder-by", "g"], "cannot order by"),
    (["--config", "{conf_bad_yaml}"], "malformed YAML"),
    (["--config", "{conf_unknown_key}"], "unknown key"),
    (["--config", "{conf_bad_name}"], "may hold only"),
    (["--config", "{conf_bad_window}"], "at most max"),
    (["--config", "{conf_bad_target}"], "outside the window"),
    (["--config", "{conf_ok}", "--table", "nope"], "unknown table"),
])
def test_bad_input_one_clear_error_nothing_written(table, tmp_path, capsys, argv, message):
    confs = {
        "conf_bad_yaml": "tables: [name: x\n",
        "conf_unknown_key": "defaults:\n  min_file_sise: 1MB\n",
        "conf_bad_name": f"tables:\n  - name: \"x'; DROP TABLE y\"\n    path: {table}\n",
        "conf_bad_window": "defaults:\n  min_file_size: 2GB\n  max_file_size: 1GB\n",
        "conf_bad_target": f"tables:\n  - name: t\n    path: {table}\n    target_file_size: 5GB\n",
        "conf_ok": f"tables:\n  - name: t\n    path: {table}\n",
    }
    subs = {"tmp": tmp_path, "table": table, **{k: _config(tmp_path / k, v) if (tmp_path / k).mkdir() is None
                                                 else None for k, v in confs.items()}}
    before = _log(table)
    rc = main(["compact", *[a.format(**subs) for a in argv]])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("pipeline-opt compact: error:")
    assert message is None or message in err
    assert _log(table) == before


def test_dry_run_json_prints_the_plan_and_writes_nothing(table, capsys):
    before = _log(table)
    assert main(["compact", str(table), "--dry-run", "--json", "--min-file-size", "1MB"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] and out["planned_files"] == 12 and out["files_removed"] == 0
    assert [p["rewrite"] for p in out["plan"]["partitions"]] == [True, True]
    assert main(["compact", str(table), "--dry-run", "--partition-filter", "g = 'a'"]) == 0
    text = capsys.readouterr().out
    assert "REWRITE g=a" in text and "g=b" not in text and _log(table) == before
