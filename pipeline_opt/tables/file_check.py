"""Whether the data files a Delta version references exist in storage (``health --check-files``).

Why: a file deleted behind Delta's back (a manual ``rm``, a bucket lifecycle rule, a VACUUM run by another tool with
too short a retention) makes every read of that version fail mid-job; the log alone cannot tell.

Invariants: read-only; only paths the log names are checked, never a listing of the data folders; on local storage
every file is checked, on an object store a seeded sample of at most ``SAMPLE`` files (one metadata request — a HEAD —
each, ``THREADS`` at a time), so the cost stays bounded on million-file tables; a file counts as missing only when the
store says it does not exist (any other error is raised, not counted). Deletion-vector files are not checked.
"""
from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Mapping, Optional

import pyarrow.fs as pafs

from pipeline_opt.delta.fs import resolve
from pipeline_opt.errors import PipelineOptError

SAMPLE = 1000
THREADS = 16
SHOWN = 5


class MissingFilesError(PipelineOptError):
    """Files the table's version references are gone from storage."""


@dataclass
class FileCheck:
    referenced: int              # live data files of the version
    checked: int                 # how many were looked up
    missing: list[str] = field(default_factory=list)  # paths relative to the table root

    @property
    def sampled(self) -> bool:
        return self.checked < self.referenced

    def render(self) -> str:
        how = f"a sample of {self.checked:,} of {self.referenced:,}" if self.sampled else f"all {self.checked:,}"
        return f"  files checked: {how} referenced data files, {len(self.missing):,} missing"


def check_files(uri: str, paths: list[str], storage_options: Optional[Mapping[str, str]] = None,
                sample: int = SAMPLE, seed: int = 0) -> FileCheck:
    """Look up the data files ``paths`` (relative to the table root at ``uri``, as the log names them)."""
    fs, root = resolve(uri, storage_options)
    chosen = paths
    if not isinstance(fs, pafs.LocalFileSystem) and len(paths) > sample:
        chosen = random.Random(seed).sample(paths, sample)
    full = [root.rstrip("/") + "/" + p for p in chosen]
    if isinstance(fs, pafs.LocalFileSystem):
        infos = fs.get_file_info(full)
    else:
        with ThreadPoolExecutor(THREADS) as pool:
            infos = list(pool.map(fs.get_file_info, full))
    missing = [p for p, info in zip(chosen, infos) if info.type == pafs.FileType.NotFound]
    return FileCheck(len(paths), len(chosen), sorted(missing))


def require_files(label: str, version: int, check: FileCheck) -> None:
    """Raise ``MissingFilesError`` naming the missing files, if any."""
    if check.missing:
        shown = ", ".join(check.missing[:SHOWN]) + (f" and {len(check.missing) - SHOWN:,} more"
                                                      if len(check.missing) > SHOWN else "")
        scope = f"of a sample of {check.checked:,}" if check.sampled else f"of {check.checked:,}"
        raise MissingFilesError(f"{label}: {len(check.missing):,} {scope} data files that version {version} references "
                                f"are missing from storage ({shown}); reads of this version will fail — restore a "
                                f"version whose files exist, or put the files back")
