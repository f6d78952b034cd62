"""`cache announce --plan`: a plan file reaches the loader's file cache; files not in the snapshot are ignored with a
warning; bad plan files and budgets that cannot hold the largest file are refused with one line, exit 2."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from pipeline_opt.app.cli import main
from pipeline_opt.delta import read_snapshot
from pipeline_opt.loader import FileCache


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    root = tmp_path_factory.mktemp("announce") / "events"
    rng = np.random.default_rng(0)
    for _ in range(4):
        n = int(rng.integers(500, 1500))
        write_deltalake(str(root), pa.table({"id": rng.integers(0, 10**9, n), "x": rng.random(n)}), mode="append")
    return root


def _plan(tmp_path, table, files) -> str:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"source": "nightly:events", "table": str(table), "files": files}))
    return str(path)


def test_a_plan_reaches_the_cache_and_unknown_files_are_dropped(table, tmp_path, capsys, caplog):
    files = [f.path for f in read_snapshot(str(table)).files]
    plan = _plan(tmp_path, table, [files[2], "part-00000-gone.parquet", files[0]])
    caplog.set_level("WARNING")
    assert main(["cache", "announce", "--cache-dir", str(tmp_path / "c"), "--budget", "10MB", "--plan", plan,
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["announced"][0]["files"] == 3 and out["announced"][0]["kept"] == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "1 file(s) not in the snapshot" in warnings[0]
    with FileCache(tmp_path / "c", "10MB", policy="planned").shared.session() as s:  # the plan is in the shared state
        assert s.policy.summary()["sources"]["nightly:events"]["of"] == 2


def test_bad_plan_file_and_too_small_budget_exit_2(table, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["cache", "announce", "--cache-dir", str(tmp_path / "c"), "--budget", "10MB",
                 "--plan", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a plan file" in err and "\n" not in err
    largest = max(f.size for f in read_snapshot(str(table)).files)
    plan = _plan(tmp_path, table, [f.path for f in read_snapshot(str(table)).files])
    assert main(["cache", "announce", "--cache-dir", str(tmp_path / "d"), "--budget", str(largest - 1),
                 "--plan", plan]) == 2
    err = capsys.readouterr().err.strip()
    assert "smaller than the largest file" in err and "\n" not in err
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())  # nothing written
