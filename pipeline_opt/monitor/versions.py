"""Versioned configurations of the optimizations, kept in a folder or under an object-store URI, with the reason for
every change.

Layout: ``ROOT/NAME/vNNNN.json`` (immutable; each names its parent version), ``ROOT/NAME/HEAD`` (the active
version, replaced atomically) and ``ROOT/NAME/log.jsonl`` (one line per activation: version, action, reason, time).
``ROOT`` is a local folder or a URI (``s3://bucket/lakehouse/_configs``, ``file:///…``), read and written through
the same pyarrow filesystems as the Delta tables beside it.

Invariants: a version, once written, never changes; reverting never deletes anything — it moves ``HEAD`` to the
parent of the active version and logs why, so a revert can itself be undone by activating the later version again;
every activation is logged before it returns; a file is replaced whole (a rename on local disks, a single PUT on an
object store), so a reader never sees half of one.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional

import pyarrow.fs as pafs

from pipeline_opt.delta.fs import resolve
from pipeline_opt.errors import PipelineOptError

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class ConfigStoreError(PipelineOptError):
    """Unknown config name or version, or nothing to revert to."""


@dataclass(frozen=True)
class ConfigVersion:
    name: str
    version: int
    parent: Optional[int]
    config: dict
    note: str
    created: float


@dataclass(frozen=True)
class Activation:
    """One change of the active version, as logged."""

    name: str
    version: int
    previous: Optional[int]
    action: str  # "put", "activate" or "revert"
    reason: str
    at: float


class ConfigStore:
    def __init__(self, root: str | Path, clock: Callable[[], float] = time.time,
                 storage_options: Optional[Mapping[str, str]] = None) -> None:
        self.root, self.clock = str(root), clock
        text = self.root if "://" in self.root else os.path.abspath(self.root)
        self.fs, self._base = resolve(text, storage_options)
        self._base = self._base.rstrip("/")

    def put(self, name: str, config: dict, note: str = "", activate: bool = True) -> ConfigVersion:
        """Writes a new version whose parent is the active one; activates it unless ``activate=False``."""
        parent = self.head(name)
        number = max(self.versions(name), default=0) + 1
        version = ConfigVersion(name, number, parent, dict(config), note, self.clock())
        self.write(name, f"v{number:04d}.json", json.dumps(version.__dict__, sort_keys=True))
        if activate:
            self._activate(name, number, "put", note)
        return version

    def get(self, name: str, version: Optional[int] = None) -> ConfigVersion:
        """The given version, or the active one."""
        version = self.head(name) if version is None else version
        text = self.read(name, f"v{version or 0:04d}.json") if version is not None else None
        if text is None:
            raise ConfigStoreError(f"config {name!r} has no version {version!r} under {self.root}")
        return ConfigVersion(**json.loads(text))

    def head(self, name: str) -> Optional[int]:
        text = self.read(name, "HEAD")
        return int(text) if text is not None else None

    def versions(self, name: str) -> list[int]:
        return sorted(int(f[1:-5]) for f in self._files(name) if re.fullmatch(r"v[0-9]+\.json", f))

    def names(self) -> list[str]:
        """The configs that have a log (every one that was ever activated)."""
        found = self.fs.get_file_info(pafs.FileSelector(self._base, allow_not_found=True))
        return sorted(i.base_name for i in found if i.type == pafs.FileType.Directory
                      and _NAME_RE.match(i.base_name) and "log.jsonl" in self._files(i.base_name))

    def activate(self, name: str, version: int, reason: str) -> Activation:
        self.get(name, version)  # raises for an unknown version
        return self._activate(name, version, "activate", reason)

    def revert(self, name: str, reason: str) -> Activation:
        """Makes the active version's parent active again and logs ``reason``."""
        current = self.get(name)
        if current.parent is None:
            raise ConfigStoreError(f"config {name!r} version {current.version} has no previous version to revert to")
        return self._activate(name, current.parent, "revert", reason)

    def log(self, name: str) -> list[Activation]:
        text = self.read(name, "log.jsonl") or ""
        return [Activation(**json.loads(line)) for line in text.splitlines() if line.strip()]

    # ------------------------------------------------------------------ files of one config
    def read(self, name: str, file: str) -> Optional[str]:
        """The text of ``NAME/file``, or None when there is none."""
        path = f"{self._folder(name)}/{file}"
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as f:
            return f.read().decode("utf-8")

    def write(self, name: str, file: str, text: str) -> None:
        """Replaces ``NAME/file`` whole: a rename on a local disk; on an object store one PUT is already whole."""
        folder = self._folder(name)
        if not isinstance(self.fs, pafs.LocalFileSystem):  # keys need no folders (pyarrow would write markers)
            with self.fs.open_output_stream(f"{folder}/{file}") as f:
                f.write(text.encode("utf-8"))
            return
        self.fs.create_dir(folder, recursive=True)
        tmp = f"{folder}/.{file}.{os.getpid()}.tmp"
        with self.fs.open_output_stream(tmp) as f:
            f.write(text.encode("utf-8"))
        os.replace(tmp, f"{folder}/{file}")

    def _files(self, name: str) -> list[str]:
        found = self.fs.get_file_info(pafs.FileSelector(self._folder(name), allow_not_found=True))
        return [i.base_name for i in found if i.type == pafs.FileType.File]

    def _activate(self, name: str, version: int, action: str, reason: str) -> Activation:
        event = Activation(name, version, self.head(name), action, reason, self.clock())
        # an object store cannot append: the log is rewritten whole (one writer per setting: rollouts refuse two)
        self.write(name, "log.jsonl", (self.read(name, "log.jsonl") or "") + json.dumps(event.__dict__,
                                                                                       sort_keys=True) + "\n")
        self.write(name, "HEAD", str(version))
        return event

    def _folder(self, name: str) -> str:
        if not _NAME_RE.match(name):
            raise ConfigStoreError(f"config name {name!r} must be 1-100 letters, digits, '_', '.' or '-'")
        return f"{self._base}/{name}"
