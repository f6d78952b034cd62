"""Spark's scratch folders: one per local driver process; the folders of killed runs are removed at the next start."""
import os
import subprocess
import sys

from pipeline_opt.scratch import remove_abandoned, scratch_dir


def test_folders_of_ended_processes_are_removed_and_live_ones_kept(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for pid in (ended.pid, alive.pid):
            (tmp_path / str(pid) / "blockmgr-1").mkdir(parents=True)
            (tmp_path / str(pid) / "blockmgr-1" / "shuffle_0.data").write_bytes(b"x" * 1000)
        (tmp_path / "not-a-pid").mkdir()
        mine = scratch_dir(tmp_path)
        assert mine == str(tmp_path / str(os.getpid()))
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([str(alive.pid), str(os.getpid()), "not-a-pid"])
        assert remove_abandoned(tmp_path) == []  # nothing else to remove; ours stays
    finally:
        alive.kill()
        alive.wait()
    assert remove_abandoned(tmp_path) == [str(alive.pid)]


def test_local_sessions_use_the_process_folder(spark):
    assert spark.conf.get("spark.local.dir").endswith(f"pipeline_opt-spark/{os.getpid()}")
