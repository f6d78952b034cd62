"""Spark's scratch space for local runs: one folder per driver process, and the folders of killed runs removed.

Why: a local Spark run writes shuffle blocks and spilled data under ``spark.local.dir`` and deletes them from a JVM
shutdown hook; a run killed with SIGKILL (an OOM killer, a CI timeout) never runs it, and its gigabytes stay in the
temp folder. Each of our local runs therefore uses ``<temp>/pipeline_opt-spark/<driver pid>``, and every start
removes the folders whose process no longer exists.

Invariants: only folders named by a process id under our own base folder are ever removed, and only when that
process is gone (a reused pid keeps its folder until that process ends too); the current process's folder is
created, never removed here; a folder that cannot be removed is left alone (another user's, or in use).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

BASE = "pipeline_opt-spark"


def scratch_dir(base: Optional[Path] = None) -> str:
    """This process's scratch folder (created), after removing those of processes that have ended."""
    root = Path(base) if base is not None else Path(tempfile.gettempdir()) / BASE
    root.mkdir(parents=True, exist_ok=True)
    remove_abandoned(root)
    mine = root / str(os.getpid())
    mine.mkdir(exist_ok=True)
    return str(mine)


def remove_abandoned(root: Path) -> list[str]:
    """Remove the folders under ``root`` whose process has ended; returns their names."""
    removed = []
    for folder in root.iterdir():
        if folder.is_dir() and folder.name.isdigit() and not _alive(int(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
