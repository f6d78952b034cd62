"""Versioned configurations of the optimizations, kept in a folder, with the reason for every change.

Layout: ``ROOT/NAME/vNNNN.json`` (immutable; each names its parent version), ``ROOT/NAME/HEAD`` (the active
version, replaced atomically) and ``ROOT/NAME/log.jsonl`` (one line per activation: version, action, reason, time).

Invariants: a version, once written, never changes; reverting never deletes anything — it moves ``HEAD`` to the
parent of the active version and logs why, so a revert can itself be undone by activating the later version again;
every activation is logged before it returns.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

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
    def __init__(self, root: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.root, self.clock = Path(root), clock

    def put(self, name: str, config: dict, note: str = "", activate: bool = True) -> ConfigVersion:
        """Writes a new version whose parent is the active one; activates it unless ``activate=False``."""
        folder = self._folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        parent = self.head(name)
        number = max(self.versions(name), default=0) + 1
        version = ConfigVersion(name, number, parent, dict(config), note, self.clock())
        _write_atomic(folder / f"v{number:04d}.json", json.dumps(version.__dict__, sort_keys=True))
        if activate:
            self._activate(name, number, "put", note)
        return version

    def get(self, name: str, version: Optional[int] = None) -> ConfigVersion:
        """The given version, or the active one."""
        version = self.head(name) if version is None else version
        path = self._folder(name) / f"v{version or 0:04d}.json"
        if version is None or not path.is_file():
            raise ConfigStoreError(f"config {name!r} has no version {version!r} under {self.root}")
        return ConfigVersion(**json.loads(path.read_text()))

    def head(self, name: str) -> Optional[int]:
        head = self._folder(name) / "HEAD"
        return int(head.read_text()) if head.is_file() else None

    def versions(self, name: str) -> list[int]:
        return sorted(int(p.stem[1:]) for p in self._folder(name).glob("v[0-9]*.json"))

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
        path = self._folder(name) / "log.jsonl"
        lines = path.read_text().splitlines() if path.is_file() else []
        return [Activation(**json.loads(line)) for line in lines if line.strip()]

    def _activate(self, name: str, version: int, action: str, reason: str) -> Activation:
        event = Activation(name, version, self.head(name), action, reason, self.clock())
        with open(self._folder(name) / "log.jsonl", "a") as f:
            f.write(json.dumps(event.__dict__, sort_keys=True) + "\n")
        _write_atomic(self._folder(name) / "HEAD", str(version))
        return event

    def _folder(self, name: str) -> Path:
        if not _NAME_RE.match(name):
            raise ConfigStoreError(f"config name {name!r} must be 1-100 letters, digits, '_', '.' or '-'")
        return self.root / name


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
