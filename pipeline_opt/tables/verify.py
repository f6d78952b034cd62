"""Proof that a rewrite of a Delta table (compaction, re-layout) changed no data, and the undo when it did.

Invariants: read-only except ``restore``/``undo_rewrite``; a fingerprint is one Spark scan of one table version
(time travel); equal data gives equal fingerprints whatever the file layout or row order; a lost, duplicated or
altered row, a changed type or a changed null count changes it (checksums are order-free sums of 64-bit hashes,
modulo 2⁶¹−1). Every statement is SQL or DataFrame API that any session runs, Spark Connect included (``DESCRIBE
HISTORY``, ``VERSION AS OF``, ``RESTORE``), and a table is addressed by catalog name or by path (``TableRef``).

API (stable; the partitioning and maintenance code reuse it):

- ``fingerprint(spark, path, version=None, where=None) -> TableFingerprint``: row count, columns with Spark
  types, per-column null counts and checksums, and a whole-row checksum, of the table at ``version`` (latest
  when None).
- ``verify_rewrite(spark, path, before, after_version, where=None) -> VerifyResult``: runs a Great Expectations
  1.x suite on the after-version against the before fingerprint (``before`` is a version number or a
  ``TableFingerprint`` taken earlier): row count equal, ordered column list equal, and per column type, null
  count and checksum equal. ``where`` (optional, from ``sql.partition_predicate``) limits both sides to the
  rewritten partitions. ``VerifyResult.ok`` is the suite's verdict; ``failures`` names each failed check. Where
  great_expectations is not installed (it cannot be on Databricks Runtime 15.4, whose pydantic 1.10.6 it refuses),
  the same five checks run built in on the same fingerprints (``VerifyResult.engine`` says which ran).
- ``restore(spark, path, version)``: Delta ``RESTORE TABLE … TO VERSION AS OF``; returns the new version.
- ``undo_rewrite(spark, path, rewrite_version) -> int``: puts back the content of ``rewrite_version - 1`` while
  keeping rows that blind appends committed after the rewrite (restore, then re-append them).
- ``check_or_restore(spark, path, before, rewrite_version, where=None) -> VerifyResult``: verify; on a
  mismatch undo the rewrite and raise ``VerificationError`` (the table is back to its old content, nothing lost).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from pipeline_opt.delta import TableLike, TableRef, read_snapshot, table_ref
from pipeline_opt.errors import PipelineOptError
from pipeline_opt.sql import quote_ident, sql_literal
from pipeline_opt.tables.checks import ColumnFingerprint, TableFingerprint, compare

_MOD = 2**61 - 1  # checksums are kept modulo a Mersenne prime so they fit a bigint and JSON exactly


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
    engine: str = "great_expectations"  # or "builtin": the same checks, without great_expectations installed


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


def fingerprint(spark, path: TableLike, version: Optional[int] = None, where: Optional[str] = None
                ) -> TableFingerprint:
    """Fingerprint of the table at ``version``: one aggregation over all rows (those matching ``where``, a
    predicate built by ``sql.partition_predicate`` — never user text — to fingerprint only touched partitions)."""
    from pyspark.sql import functions as F

    version = current_version(spark, path) if version is None else int(version)
    df = read_version(spark, path, version)
    if where:
        df = df.where(where)
    fields = df.schema.fields
    aggs = [F.count(F.lit(1)).alias("rows"), *_hash_sums([_hashable(f) for f in fields] or [F.lit(0)], "row")]
    for i, f in enumerate(fields):
        col = F.col(quote_ident(f.name))
        aggs.append(F.sum(F.when(col.isNull(), 1).otherwise(0)).alias(f"n{i}"))
        aggs.extend(_hash_sums([_hashable(f)], f"h{i}"))
    row = df.agg(*aggs).collect()[0]
    columns = [ColumnFingerprint(f.name, f.dataType.simpleString(), int(row[f"n{i}"] or 0), _checksum(row, f"h{i}"))
               for i, f in enumerate(fields)]
    return TableFingerprint(version, int(row["rows"]), _checksum(row, "row"), columns)


def _hashable(f):
    from pyspark.sql import functions as F

    col = F.col(quote_ident(f.name))
    # Spark refuses to hash map types; their JSON text is a faithful stand-in.
    return F.to_json(F.struct(col)) if "map<" in f.dataType.simpleString() else col


def _hash_sums(cols, name: str) -> list:
    """Order-free sums of the four 16-bit quarters of each row's 64-bit hash: plain bigint sums (several times
    faster than decimal ones) that cannot overflow below 2⁴⁷ rows, where ANSI mode would raise."""
    from pyspark.sql import functions as F

    h = F.xxhash64(*cols)
    return [F.sum(F.shiftrightunsigned(h, 16 * k).bitwiseAND(F.lit(0xFFFF))).alias(f"{name}_{k}") for k in range(4)]


def _checksum(row, name: str) -> int:
    """The sum of the 64-bit hashes, rebuilt from its quarter sums, modulo ``_MOD``."""
    return sum(int(row[f"{name}_{k}"] or 0) << (16 * k) for k in range(4)) % _MOD


def verify_rewrite(spark, path: TableLike, before: Union[int, TableFingerprint], after_version: int,
                   where: Optional[str] = None) -> VerifyResult:
    """Run the GX suite on ``after_version`` against the ``before`` fingerprint (or version); ``where`` limits
    both sides to the rewritten partitions (a rewrite that moved rows across partitions still fails)."""
    expected = before if isinstance(before, TableFingerprint) else fingerprint(spark, path, before, where)
    actual = fingerprint(spark, path, after_version, where)
    after_df = read_version(spark, path, after_version)
    failures, checks, engine = compare(spark, expected, actual, after_df.where(where) if where else after_df)
    return VerifyResult(str(path), expected.version, actual.version, not failures, checks, failures, engine=engine)


def restore(spark, path: TableLike, version: int) -> int:
    """Delta ``RESTORE`` of the table to ``version``; returns the version the restore committed."""
    spark.sql(f"RESTORE TABLE {table_ref(path).sql} TO VERSION AS OF {int(version)}")
    return current_version(spark, path)


def undo_rewrite(spark, path: TableLike, rewrite_version: int) -> int:
    """Put back the content of ``rewrite_version - 1``, keeping rows appended by later commits.

    Only blind appends may follow the rewrite (anything else refuses, naming the version to restore by hand):
    their rows — those of the files live now but not at ``rewrite_version`` — are re-appended after the restore.
    """
    latest = current_version(spark, path)
    later = _later_operations(spark, path, rewrite_version, latest)
    not_appends = [f"{v}:{op}" for v, op in later if not _is_append(op)]
    if not_appends:
        raise VerificationError(f"{path}: rewrite at version {rewrite_version} changed data and later commits "
                                f"{not_appends} are not appends; restore version {rewrite_version - 1} by hand")
    appended = _appended_rows(spark, table_ref(path), rewrite_version, latest) if later else None
    has_rows = appended is not None and bool(appended.take(1))
    restored = restore(spark, path, rewrite_version - 1)
    if appended is not None and has_rows:
        _append(appended, table_ref(path))
        restored = current_version(spark, path)
    return restored


def _appended_rows(spark, ref: TableRef, since: int, latest: int):
    """Rows of the data files live at ``latest`` but not at ``since``: a time-travel read pinned to ``latest``, so
    it still reads them after the restore (RESTORE keeps the files; only VACUUM deletes them)."""
    names = sorted({p.rsplit("/", 1)[-1] for p in set(read_snapshot(ref.location, latest).paths)
                    - set(read_snapshot(ref.location, since).paths)})
    columns = read_version(spark, ref, latest).columns
    wanted = ", ".join(sql_literal(n) for n in names) or "NULL"
    return spark.sql(f"SELECT {', '.join(quote_ident(c) for c in columns)} FROM {ref.sql} VERSION AS OF "
                     f"{int(latest)} WHERE element_at(split(_metadata.file_path, '/'), -1) IN ({wanted})")


def _append(rows, ref: TableRef) -> None:
    """A blind append of ``rows``: by catalog name for a named table (path writes to managed tables are refused)."""
    writer = rows.write.format("delta").mode("append")
    if ref.name:
        writer.saveAsTable(ref.sql)
    else:
        writer.save(ref.location)


def _later_operations(spark, path: TableLike, after: int, latest: int) -> list[tuple[int, str]]:
    hist = history(spark, path, max(latest - after, 1)).collect()
    return sorted((int(h["version"]), str(h["operation"]) + ":" + str((h["operationParameters"] or {}).get("mode")))
                  for h in hist if int(h["version"]) > after)


def _is_append(op: str) -> bool:
    name, _, mode = op.partition(":")
    return name in ("WRITE", "STREAMING UPDATE") and mode in ("Append", "None")


def check_or_restore(spark, path: TableLike, before: Union[int, TableFingerprint], rewrite_version: int,
                     where: Optional[str] = None) -> VerifyResult:
    """Verify ``rewrite_version`` against ``before``; on a mismatch undo it and raise ``VerificationError``."""
    result = verify_rewrite(spark, path, before, rewrite_version, where)
    if result.ok:
        return result
    result.restored_to = undo_rewrite(spark, path, rewrite_version)
    raise VerificationError(f"{path}: rewrite at version {rewrite_version} changed the data "
                            f"({'; '.join(result.failures)}); restored (now version {result.restored_to})")
