"""A compaction process killed by SIGKILL at several points leaves a readable table with the same contents."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

REPO = Path(__file__).resolve().parents[2]


def _table(path: Path) -> str:
    for i in range(12):
        write_deltalake(str(path), pa.table({"id": np.arange(500) + 500 * i, "g": ["a", "b"] * 250}),
                        mode="append", partition_by=["g"])
    return str(path)


def _rows(path: str) -> list[tuple]:
    t = DeltaTable(path).to_pyarrow_table().sort_by([("id", "ascending")])
    return list(zip(t.column("id").to_pylist(), t.column("g").to_pylist()))


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("kill_at", [": optimize ", "committed version", "verified version"])
def test_killed_compaction_keeps_table_readable_and_equal(tmp_path, kill_at):
    path = _table(tmp_path / "t")
    expected = _rows(path)
    # Kill points: during the OPTIMIZE job (nothing committed), after the commit before verification, after it.
    cmd = [sys.executable, "-m", "pipeline_opt.app.cli", "compact", path, "--min-file-size", "1MB"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if kill_at in line:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert any(kill_at in line for line in seen), "".join(seen[-20:])
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.2)
    assert _rows(path) == expected  # readable, same rows, whatever version the kill left behind
