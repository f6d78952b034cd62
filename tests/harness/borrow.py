"""Make some of one venv's distributions importable in another, and nothing else: ``python -m tests.harness.borrow
DEST torch`` links the top-level modules of ``torch`` and of every distribution it requires (transitively) into
DEST, to be put on the other venv's ``sys.path`` after its own packages (a ``.pth`` line). The Spark 3.5 venv uses it
for torch, which only holds the loader tests' batches, instead of a second multi-GB install."""
from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement


def closure(names: list[str]) -> list:
    """The distributions ``names`` and everything they require (markers evaluated here), each once."""
    seen: dict = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        key = dist.metadata["Name"].lower()
        if key in seen:
            continue
        seen[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


def link(dest: Path, names: list[str]) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    for dist in closure(names):
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            source = Path(str(dist.locate_file(top)))
            target = dest / top
            if source.exists() and not target.exists():
                target.symlink_to(source)
                count += 1
    return count


if __name__ == "__main__":
    print(f"{link(Path(sys.argv[1]), sys.argv[2:])} entries linked into {sys.argv[1]}")
