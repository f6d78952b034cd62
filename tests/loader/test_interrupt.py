"""Ctrl-C during ``pipeline-opt stream --workers 2``: exit 130, the one line "interrupted", and no worker left behind.

The interrupt goes to the whole process group, as a terminal's Ctrl-C does, so the workers receive it too.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import write_deltalake


def _children(pid: int) -> set:
    out = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(check, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_with_two_workers_ends_quietly(tmp_path):
    table = tmp_path / "t"
    for part in range(2):  # two files, one per worker; batches of one row keep the epoch going for a long while
        ids = np.arange(part * 100_000, (part + 1) * 100_000)
        write_deltalake(str(table), pa.table({"id": ids, "x": ids * 0.5}), mode="append")
    exe = Path(sys.executable).with_name("pipeline-opt")
    proc = subprocess.Popen([str(exe), "stream", str(table), "--workers", "2", "--batch-size", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        # the reader lease appears when the epoch starts; two live workers then deliver a batch in milliseconds
        assert _wait_for(lambda: any((table / "_pipeline_opt_leases").glob("*.json")), 60), proc.poll()
        assert _wait_for(lambda: len([c for c in _children(proc.pid) if _alive(c)]) >= 2, 30)
        workers = _children(proc.pid)
        time.sleep(0.5)
        assert proc.poll() is None, "the epoch ended before the interrupt"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["pipeline-opt stream: interrupted"], err
    assert "Traceback" not in err and "Error" not in err
    assert _wait_for(lambda: not any(_alive(w) for w in workers), 5), "a worker process outlived the interrupt"
