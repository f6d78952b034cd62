"""Every shipped config file, damaged the ways users damage them, through the one loader and the commands that read
it: each damage is either read into a valid config or refused with one ``ConfigError`` line naming the file; no other
exception, no traceback, nothing written.

Property part (in process, no Spark): for each of ``conf/*.yml``, any one key replaced by a hostile value (wrong type,
NaN/inf, huge, negative, empty, nested), and the file then damaged (a key written twice, cut mid-way, Latin-1 bytes,
a required field dropped). Fixed part: one hostile file per config through each command that reads it, checked at
the process boundary as a user sees it (exit 2, one stderr line, the table folder unchanged). These commands refuse
before any Spark session starts, so the part costs seconds.
"""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pipeline_opt.app.conf import SCHEMAS, load_conf
from pipeline_opt.errors import ConfigError
from tests.fuzz.hostile import CASES, FILES, HOSTILE_TEXT, JSON, NUMBERS, OUTCOMES, one_line, tree

CONF = Path(__file__).resolve().parents[2] / "conf"
SHIPPED = {name: yaml.safe_load((CONF / name).read_text()) for name in SCHEMAS}


def _leaves(tree, prefix=()) -> list[tuple]:
    """Key paths of every value in a config tree (lists by index), the containers themselves included."""
    paths = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            paths += _leaves(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            paths += _leaves(value, (*prefix, i))
    return paths


def _replaced(tree, path: tuple, value):
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = dict(tree) if isinstance(tree, dict) else list(tree)
    copy[head] = _replaced(tree[head], rest, value)
    return copy


def _dropped(tree, path: tuple):
    copy = dict(tree) if isinstance(tree, dict) else list(tree)
    if len(path) == 1:
        del copy[path[0]]
    else:
        copy[path[0]] = _dropped(tree[path[0]], path[1:])
    return copy


HOSTILE = st.one_of(NUMBERS, HOSTILE_TEXT, JSON, st.just(None), st.just(""), st.just([]), st.just({}))
DAMAGE = st.sampled_from(["none", "none", "twice", "cut", "latin1", "drop"])


def _text(tree, damage: str, path: tuple) -> bytes:
    if damage == "drop" and path:
        tree = _dropped(tree, path)
    text = yaml.safe_dump(tree, allow_unicode=True, sort_keys=False)
    if damage == "twice" and isinstance(tree, dict) and tree:
        first = next(iter(tree))
        text += yaml.safe_dump({first: tree[first]}, sort_keys=False)
    if damage == "cut":
        text = text[: max(1, len(text) // 2)] + '"'
    data = text.encode("utf-8")
    return data + "caf\u00e9: 1\n".encode("latin-1") if damage == "latin1" else data


def _non_finite(value) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


@FILES
@given(name=st.sampled_from(sorted(SHIPPED)), pick=st.integers(min_value=0), value=HOSTILE, damage=DAMAGE)
def test_every_config_file_reads_or_refuses_in_one_line(name, pick, value, damage, tmp_path_factory):
    CASES["config files"] += 1
    paths = _leaves(SHIPPED[name])
    path = paths[pick % len(paths)] if paths else ()
    folder = tmp_path_factory.mktemp("conf")
    (folder / name).write_bytes(_text(_replaced(SHIPPED[name], path, value), damage, path))
    try:
        load_conf(name, folder)
    except ConfigError as e:
        OUTCOMES[("config files", "refused")] += 1
        one_line(e, name)
        return
    OUTCOMES[("config files", "read")] += 1
    assert damage not in ("twice", "cut", "latin1"), (name, damage)  # damaged text is never read
    assert not _non_finite(value) or damage == "drop", (name, path, value)  # NaN/inf never become a setting


def test_the_shipped_configs_all_read():
    for name in SHIPPED:
        load_conf(name, CONF)


# One hostile file per config, through each command that reads it. {table} is a real Delta table, {conf} the
# folder of the hostile files.
COMMANDS = [
    ("tables.yml", {"defaults": {"max_deleted_rows_ratio": 5}}, ["health", "--config", "{conf}/tables.yml"]),
    ("tables.yml", {"defaults": {"min_file_size": "99999999TB"}}, ["compact", "--config", "{conf}/tables.yml"]),
    ("tables.yml", {"defaults": {"min_bin_files": 0}}, ["schedule", "--config", "{conf}/tables.yml"]),
    ("tables.yml", {"defaults": {"vacuum_retention_hours": ".nan"}}, ["vacuum", "--config", "{conf}/tables.yml"]),
    ("training.yml", {"lr": ".nan"}, ["train", "--config", "{conf}/training.yml"]),
    ("training.yml", {"model": {"layers": -1}}, ["memory-plan", "--config", "{conf}/training.yml"]),
    ("training.yml", {"budget_gib": -4}, ["train", "--config", "{conf}/training.yml"]),
    ("cache.yml", {"budget": "-4GiB"}, ["cache", "plan", "--config", "{conf}/cache.yml", "--log", "{conf}/x.log"]),
    ("monitor.yml", {"latency_ratio": "inf"}, ["check-config", "{conf}"]),
    ("storage.yml", {"attempts": 0}, ["check-config", "{conf}"]),
]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    import pyarrow as pa
    from deltalake import write_deltalake

    path = tmp_path_factory.mktemp("lake") / "t"
    write_deltalake(str(path), pa.table({"x": list(range(10))}))
    return path


def _hostile_conf(folder: Path, name: str, changes: dict, table: Path) -> None:
    tree = dict(SHIPPED[name])
    for key, value in changes.items():
        tree[key] = {**tree[key], **value} if isinstance(value, dict) else value
    if name == "tables.yml":
        tree["tables"] = [{"name": "t", "path": str(table)}]
    if name == "training.yml":
        tree["table"] = str(table)
    text = yaml.safe_dump(tree, sort_keys=False)
    for quoted in ("'.nan'", "'inf'"):  # the YAML float literals, not strings
        text = text.replace(quoted, quoted.strip("'").replace("inf", ".inf"))
    for other in SCHEMAS:  # check-config loads every file of the folder: the others stay as shipped
        (folder / other).write_text((CONF / other).read_text())
    (folder / name).write_text(text)
    (folder / "x.log").write_text("")


@pytest.mark.parametrize("name,changes,argv", COMMANDS, ids=lambda c: c if isinstance(c, str) else None)
def test_commands_refuse_a_hostile_config_in_one_line(name, changes, argv, table, tmp_path):
    _hostile_conf(tmp_path, name, changes, table)
    before = tree(table.parent), tree(tmp_path)
    words = [w.format(conf=tmp_path, table=table) for w in argv]
    result = subprocess.run([sys.executable, "-m", "pipeline_opt.app.cli", *words], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (words, result.stderr[-2000:])
    assert len(lines) == 1 and "Traceback" not in result.stderr, (words, result.stderr[-2000:])
    assert name in lines[0], lines
    assert (tree(table.parent), tree(tmp_path)) == before, words
