"""Proof that a rewrite of a Delta table (compaction, re-layout) changed no data, and the undo when it did.

Invariants: read-only except ``restore``/``undo_rewrite``; a fingerprint is one Spark scan of one table version
(time travel), of all its rows or of the rows of named data files; equal data gives equal fingerprints whatever the
file layout or row order; a lost, duplicated or altered row, a changed type or a changed null count changes it
(checksums are order-free sums of 64-bit hashes, modulo 2⁶¹−1). Fingerprints are additive (counts and sums), so
for one commit that only rewrites files, "the rows of the files it removed (at version − 1) fingerprint like the
rows of the files it added (at version)" plus "every other live file, and its deletion vector, is the same in both
snapshots" (checked from the Delta log) proves the whole table unchanged: a commit is verified by reading only what
it touched. Every statement is SQL or DataFrame API that any session runs, Spark Connect included (``DESCRIBE
HISTORY``, ``VERSION AS OF``, ``_metadata.file_path``, ``RESTORE``), and a table is addressed by catalog name or by
path (``TableRef``); the log is read from the table's location (``delta.read_snapshot``, the commit's JSON).

API (stable; the partitioning and maintenance code reuse it):

- ``fingerprint(spark, path, version=None, where=None, *, files=None, column_checksums=True) -> TableFingerprint``:
  row count, columns with Spark types, per-column null counts and checksums (``None`` when
  ``column_checksums=False``), and a whole-row checksum, of the table at ``version`` (latest when None); ``files``
  (relative paths, as in the log) limits it to the rows of those data files.
- ``verify_rewrite(spark, path, before, after_version, where=None, *, touched=None) -> VerifyResult``: runs a Great
  Expectations 1.x suite on the after-version's fingerprint against the before fingerprint (``before`` is a
  version number or a ``TableFingerprint`` taken earlier; the suite reads frames built from the two fingerprints,
  never the table): row count equal, ordered column list equal, and per column type, null count and checksum
  equal. When ``before == after_version - 1`` (or ``touched=True``) only the files the commit
  removed and added are read, after the log check above (a commit whose actions do not explain the snapshot
  difference fails with ``engine == "delta_log"``, before any scan); otherwise ``where`` (optional, from
  ``sql.partition_predicate``) limits both sides to the rewritten partitions (a rewrite that moved rows across
  partitions still fails). The first pass hashes whole rows only; the per-column checksums, which name the changed
  column, are computed in a second pass only when the row count or the row checksum differs. ``VerifyResult.ok``
  is the suite's verdict; ``failures`` names each failed check. Where great_expectations is not installed (it
  cannot be on Databricks Runtime 15.4, whose pydantic 1.10.6 it refuses), the same five checks run built in on
  the same fingerprints (``VerifyResult.engine`` says which ran).
- ``restore(spark, path, version)``: Delta ``RESTORE TABLE … TO VERSION AS OF``; returns the new version.
- ``undo_rewrite(spark, path, rewrite_version) -> int`` (from ``tables.undo``): puts back the content of
  ``rewrite_version - 1`` while keeping every row later appends committed — one commit that reverses the rewrite's
  own actions, or RESTORE plus re-appends derived from the log after it commits.
- ``check_or_restore(spark, path, before, rewrite_version, where=None, *, touched=None) -> VerifyResult``: verify;
  on a mismatch undo the rewrite and raise ``VerificationError`` (the table is back to its old content, nothing
  lost).
"""
from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, Union
from urllib.parse import unquote

from pipeline_opt.delta import TableLike, TableRef, read_snapshot, table_ref
from pipeline_opt.delta.fs import resolve
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.sql import quote_ident, sql_literal
from pipeline_opt.tables.checks import ColumnFingerprint, TableFingerprint, compare
from pipeline_opt.tables.file_rows import file_rows
from pipeline_opt.tables.undo import undo_rewrite

_MOD = 2**61 - 1  # checksums are kept modulo a Mersenne prime so they fit a bigint and JSON exactly
_PLAIN_NAME = re.compile(r"[A-Za-z0-9._-]+")  # file names that _metadata.file_path spells as the log does
_FILE_NAME = "element_at(split(_metadata.file_path, '/'), -1)"


class VerificationError(PipelineOptError):
    """A rewrite changed the data; the table was restored to its version before the rewrite."""

    exit_code = 3


@dataclass
class VerifyResult:
    path: str
    before_version: int
    after_version: int
    ok: bool
    checks: int
    failures: list[str] = field(default_factory=list)
    restored_to: Optional[int] = None
    engine: str = "great_expectations"  # or "builtin" (same checks, no great_expectations) or "delta_log"
    scope: str = "table"  # "touched": only the commit's removed and added files were read


def read_version(spark, path: TableLike, version: Optional[int] = None):
    """The table at ``version`` as a DataFrame (Delta time travel, ``VERSION AS OF``; latest when None)."""
    return spark.sql(table_ref(path).select(version))


def history(spark, path: TableLike, limit: int):
    """The newest ``limit`` commits of the table (``DESCRIBE HISTORY``, which every Spark session can run)."""
    return spark.sql(f"DESCRIBE HISTORY {table_ref(path).sql} LIMIT {int(limit)}")


def current_version(spark, path: TableLike) -> int:
    return int(history(spark, path, 1).collect()[0]["version"])


def find_commit(spark, path: TableLike, user_metadata: str, search: int = 50) -> Optional[int]:
    """The version among the newest ``search`` commits whose ``userMetadata`` is ``user_metadata``."""
    for row in history(spark, path, search).select("version", "userMetadata").collect():
        if row["userMetadata"] == user_metadata:
            return int(row["version"])
    return None


def fingerprint(spark, path: TableLike, version: Optional[int] = None, where: Optional[str] = None, *,
                files: Optional[list[str]] = None, column_checksums: bool = True) -> TableFingerprint:
    """Fingerprint of the table at ``version``: one aggregation over all rows (those matching ``where``, a
    predicate built by ``sql.partition_predicate`` — never user text — to fingerprint only touched partitions; and
    those of the data files ``files``, relative paths as in the log, when given)."""
    version = current_version(spark, path) if version is None else int(version)
    return _aggregate(_rows(spark, table_ref(path), version, where, files), version, column_checksums)


def _rows(spark, ref: TableRef, version: int, where: Optional[str] = None, files: Optional[list[str]] = None):
    """The rows of the table at ``version``; of the files named ``files`` only when given: read from those files
    alone (``file_rows``), else through a ``_metadata.file_path`` filter, which scans the whole version."""
    if files is None:
        df = read_version(spark, ref, version)
        return df.where(where) if where else df
    names = sorted({f.rsplit("/", 1)[-1] for f in files})
    exact = file_rows(spark, ref, version, names) if names else None
    if exact is not None:
        return exact.where(where) if where else exact
    wanted = ", ".join(sql_literal(n) for n in names) or "NULL"
    sql = f"SELECT * FROM {ref.sql} VERSION AS OF {int(version)} WHERE {_FILE_NAME} IN ({wanted})"
    return spark.sql(sql + (f" AND ({where})" if where else ""))


def _aggregate(df, version: int, column_checksums: bool, max_rows: Optional[int] = None) -> TableFingerprint:
    from pyspark.sql import functions as F

    pieces = _pieces(max_rows)
    fields = df.schema.fields
    aggs = [F.count(F.lit(1)).alias("rows"),
            *_hash_sums([_hashable(f) for f in fields] or [F.lit(0)], "row", pieces)]
    for i, f in enumerate(fields):
        aggs.append(F.count(F.col(quote_ident(f.name))).alias(f"v{i}"))  # non-null values; nulls = rows - this
        if column_checksums:
            aggs.extend(_hash_sums([_hashable(f)], f"h{i}", pieces))
    row = df.agg(*aggs).collect()[0]
    rows = int(row["rows"])
    columns = [ColumnFingerprint(f.name, f.dataType.simpleString(), rows - int(row[f"v{i}"] or 0),
                                 _checksum(row, f"h{i}", pieces) if column_checksums else None)
               for i, f in enumerate(fields)]
    return TableFingerprint(version, rows, _checksum(row, "row", pieces), columns)


def _hashable(f):
    from pyspark.sql import functions as F

    col = F.col(quote_ident(f.name))
    # Spark refuses to hash map types; their JSON text is a faithful stand-in.
    return F.to_json(F.struct(col)) if "map<" in f.dataType.simpleString() else col


def _pieces(max_rows: Optional[int]) -> int:
    """How many pieces each 64-bit hash is summed in. A piece of w bits is below 2^w, so n rows sum below n·2^w,
    which fits a signed bigint (where ANSI mode would raise on overflow) while n ≤ 2^(63−w): two 32-bit halves hold
    2^31 − 1 rows, four 16-bit quarters 2^47. Halves halve the sums per row; they are used where the log bounds the
    rows scanned (physical records of the files read) below 2^31, quarters otherwise."""
    return 2 if max_rows is not None and 0 <= max_rows < 2**31 else 4


def _hash_sums(cols, name: str, pieces: int = 4) -> list:
    """Order-free sums of the ``pieces`` equal bit slices of each row's 64-bit hash: plain bigint sums (several
    times faster than decimal ones) that cannot overflow within the bound ``_pieces`` states."""
    from pyspark.sql import functions as F

    h, width = F.xxhash64(*cols), 64 // pieces
    return [F.sum(F.shiftrightunsigned(h, width * k).bitwiseAND(F.lit((1 << width) - 1))).alias(f"{name}_{k}")
            for k in range(pieces)]


def _checksum(row, name: str, pieces: int = 4) -> int:
    """The sum of the 64-bit hashes, rebuilt from its slice sums, modulo ``_MOD`` (the same for any ``pieces``)."""
    width = 64 // pieces
    return sum(int(row[f"{name}_{k}"] or 0) << (width * k) for k in range(pieces)) % _MOD


@dataclass(frozen=True)
class Touched:
    """What one commit rewrote, from its log entry: the files it removed (live at ``version - 1``) and added (live
    at ``version``), with the physical rows the log records for each side (None where a file has no stats);
    ``problems`` lists every way the two snapshots differ other than by exactly those files."""

    version: int
    removed: tuple[str, ...]
    added: tuple[str, ...]
    removed_rows: Optional[int]
    added_rows: Optional[int]
    problems: tuple[str, ...] = ()


class Untouchable(Exception):
    """The commit cannot be verified file by file (the caller verifies whole versions instead)."""


def touched_files(location: str, version: int) -> Touched:
    """The commit's remove and add actions, checked against the snapshots at ``version - 1`` and ``version``:
    live(version − 1) − removed must equal live(version) − added, with the same deletion vectors, every removed
    file must have been live and every added one must be. Raises ``Untouchable`` when file-by-file reading could
    not be trusted: a schema change, or file names that ``_metadata.file_path`` does not match one to one."""
    removes, adds = _commit_paths(location, version)
    before, after = read_snapshot(location, version - 1), read_snapshot(location, version)
    if (before.schema, dict(before.physical), before.partition_columns) != (
            after.schema, dict(after.physical), after.partition_columns):
        raise Untouchable(f"version {version} changed the table's schema or partitioning")
    live_b, live_a = set(before.paths), set(after.paths)
    problems = []
    if removes - live_b:
        problems.append(f"removes files not live at version {version - 1}: {_few(removes - live_b)}")
    if adds - live_a:
        problems.append(f"adds files not live at version {version}: {_few(adds - live_a)}")
    rest_b, rest_a = live_b - removes, live_a - adds
    if rest_b != rest_a:
        problems.append(f"snapshot differs outside the commit's actions: {len(rest_b - rest_a)} untouched file(s) "
                        f"gone {_few(rest_b - rest_a)}, {len(rest_a - rest_b)} appeared {_few(rest_a - rest_b)}")
    dv = sorted(p for p in rest_b & rest_a if before.vectors.get(p) != after.vectors.get(p))
    if dv:
        problems.append(f"deletion vectors of untouched files changed: {_few(dv)}")
    for snap, picked in ((before, removes & live_b), (after, adds & live_a)):
        names = Counter(p.rsplit("/", 1)[-1] for p in snap.paths)
        if any(not _PLAIN_NAME.fullmatch(p.rsplit("/", 1)[-1]) or names[p.rsplit("/", 1)[-1]] > 1 for p in picked):
            raise Untouchable(f"file names of version {snap.version} are not unique plain names")
    return Touched(version, tuple(sorted(removes & live_b)), tuple(sorted(adds & live_a)),
                   _records(before, removes), _records(after, adds), tuple(problems))


def _commit_paths(location: str, version: int) -> tuple[set[str], set[str]]:
    """(removed, added) relative paths, decoded, of the commit ``version`` (its ``_delta_log`` JSON entry)."""
    fs, root = resolve(location)
    try:
        with fs.open_input_stream(f"{root.rstrip('/')}/_delta_log/{int(version):020d}.json") as fh:
            actions = [json.loads(line) for line in fh.read().decode().splitlines() if line.strip()]
    except (OSError, ValueError) as e:
        raise Untouchable(f"commit {version} unreadable ({e})") from None
    removes = {unquote(a["remove"]["path"]) for a in actions if "remove" in a}
    adds = {unquote(a["add"]["path"]) for a in actions if "add" in a}
    return removes, adds


def _records(snap, paths: set[str]) -> Optional[int]:
    """Physical rows of ``paths`` from the snapshot's add actions; None where one has no stats (bound unknown)."""
    if "num_records" not in snap.actions.column_names:
        return None
    rows = [r for p, r in zip(snap.paths, snap.actions.column("num_records").to_pylist()) if p in paths]
    return None if any(r is None for r in rows) else sum(int(r) for r in rows)


def _few(paths, n: int = 3) -> str:
    paths = sorted(paths)
    return ", ".join(paths[:n]) + (f" … (+{len(paths) - n})" if len(paths) > n else "")


def _lean(fp: TableFingerprint) -> TableFingerprint:
    """``fp`` without per-column checksums (what the first pass computes)."""
    return dataclasses.replace(fp, columns=[dataclasses.replace(c, checksum=None) for c in fp.columns])


def _rows_differ(a: TableFingerprint, b: TableFingerprint) -> bool:
    return (a.rows, a.row_checksum) != (b.rows, b.row_checksum)


def verify_rewrite(spark, path: TableLike, before: Union[int, TableFingerprint], after_version: int,
                   where: Optional[str] = None, *, touched: Optional[bool] = None) -> VerifyResult:
    """Run the GX suite on ``after_version`` against the ``before`` fingerprint (or version). One commit
    (``before == after_version - 1``, or ``touched=True``) is verified from the files it touched; otherwise
    ``where`` limits both sides to the rewritten partitions (a rewrite that moved rows across partitions still
    fails). Per-column checksums are computed only when whole rows differ, to name the changed columns."""
    ref, after_version = table_ref(path), int(after_version)
    one_commit = not isinstance(before, TableFingerprint) and int(before) == after_version - 1
    scope = None
    if touched if touched is not None else one_commit:
        if not one_commit:
            raise ValueError("touched=True verifies one commit: before must be after_version - 1")
        try:
            scope = touched_files(ref.location, after_version)
        except Untouchable:
            scope = None  # the whole (where-limited) versions are compared instead
    if scope is not None and scope.problems:
        return VerifyResult(str(path), after_version - 1, after_version, False, 1,
                            [f"delta log check failed: {p}" for p in scope.problems], engine="delta_log",
                            scope="touched")
    if scope is not None:
        def side(version, cols):
            files, bound = ((scope.removed, scope.removed_rows) if version < after_version
                            else (scope.added, scope.added_rows))
            return _aggregate(_rows(spark, ref, version, files=list(files)), version, cols, bound)
        expected, actual = side(after_version - 1, False), side(after_version, False)
        if _rows_differ(expected, actual):  # second pass: which columns changed
            expected, actual = side(after_version - 1, True), side(after_version, True)
    else:
        def side(version, cols):
            return _aggregate(_rows(spark, ref, version, where), version, cols)
        expected = _lean(before) if isinstance(before, TableFingerprint) else side(int(before), False)
        actual = side(after_version, False)
        if _rows_differ(expected, actual):
            expected = before if isinstance(before, TableFingerprint) else side(int(before), True)
            actual = side(after_version, any(c.checksum is not None for c in expected.columns))
    failures, checks, engine = compare(spark, expected, actual)
    return VerifyResult(str(path), expected.version, actual.version, not failures, checks, failures, engine=engine,
                        scope="touched" if scope is not None else "table")


def restore(spark, path: TableLike, version: int) -> int:
    """Delta ``RESTORE`` of the table to ``version``; returns the version the restore committed."""
    spark.sql(f"RESTORE TABLE {table_ref(path).sql} TO VERSION AS OF {int(version)}")
    return current_version(spark, path)


def check_or_restore(spark, path: TableLike, before: Union[int, TableFingerprint], rewrite_version: int,
                     where: Optional[str] = None, *, touched: Optional[bool] = None) -> VerifyResult:
    """Verify ``rewrite_version`` against ``before``; on a mismatch undo it and raise ``VerificationError``."""
    result = verify_rewrite(spark, path, before, rewrite_version, where, touched=touched)
    if result.ok:
        return result
    # A snapshot that differs from the one before beyond the commit's own actions (engine "delta_log": untouched
    # files gone) is not put right by reversing those actions; RESTORE rebuilds the old file set.
    method = "restore" if result.engine == "delta_log" else "auto"
    result.restored_to = undo_rewrite(spark, path, rewrite_version, method=method)
    raise VerificationError(f"{path}: rewrite at version {rewrite_version} changed the data "
                            f"({'; '.join(result.failures)}); restored (now version {result.restored_to})")
