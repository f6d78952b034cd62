"""VACUUM computed from the Delta log vs Delta's own listing VACUUM, on one 100,000-file table.

Run: .venv/bin/python benchmarks/vacuum.py [--files 100000] → benchmarks/results/vacuum.json

The table: ``--files`` tiny data files (one real 1-row parquet file's bytes each, in 50 partition folders, all on
disk, modified 20 days ago) added by commits of ``--per-commit`` files, then half of them removed by later commits:
all removes 10 days old but the last commit's, an hour old (its files are still inside a 7-day retention), and a
checkpoint at the end, as a long-lived table has. The log is written directly (as ``benchmarks/delta_log.py`` builds
its 100,000-file log), so building costs seconds. Three identical copies (hard links: a file deleted in one copy
stays in the others) are then vacuumed, each executing with the same 168-hour retention:

(a) ``tables.vacuum.vacuum`` (run last) — what the package ran until now: Delta's ``VACUUM … DRY RUN`` (a listing), the
    sizes of the listed files, then Delta's ``VACUUM`` (a second listing, and the deletes);
(b) Delta's own ``VACUUM … RETAIN 168 HOURS`` alone, through Spark SQL (one listing and the deletes);
(c) ``tables.vacuum_log.vacuum_from_log`` (the log only, and the deletes; run first).

Wall times exclude the Spark session's start (warmed up first). The surviving file sets of the three copies must be
equal to what the synthetic log says should survive (so equal to each other); files deleted are counted on disk.
The JSON is written after each step, so a run cut short (``"complete": false``) keeps what it measured.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline_opt.tables.vacuum import vacuum  # noqa: E402
from pipeline_opt.tables.vacuum_log import vacuum_from_log  # noqa: E402

DAY_MS = 24 * 3600 * 1000
PARTITIONS = 50
RETENTION_HOURS = 168


def build_table(root: Path, files: int, per_commit: int) -> dict:
    """Write the table at ``root``; returns facts about it (versions, files removed, files that must survive)."""
    now = int(time.time() * 1000)
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array([1], pa.int64())}), buf)
    blob = buf.getvalue()
    log = root / "_delta_log"
    log.mkdir(parents=True)
    paths = [f"part=p{i % PARTITIONS}/part-{i:06d}-{uuid.UUID(int=i)}.c000.snappy.parquet" for i in range(files)]
    for p in range(PARTITIONS):
        (root / f"part=p{p}").mkdir()
    old_s = (now - 20 * DAY_MS) / 1000
    for p in paths:
        with open(root / p, "wb") as fh:
            fh.write(blob)
        os.utime(root / p, (old_s, old_s))
    schema = {"type": "struct", "fields": [{"name": "id", "type": "long", "nullable": True, "metadata": {}},
                                           {"name": "part", "type": "string", "nullable": True, "metadata": {}}]}
    version = 0

    def commit(actions: list[dict], stamp: int, operation: str) -> None:
        nonlocal version
        actions = actions + [{"commitInfo": {"timestamp": stamp, "operation": operation, "operationParameters": {}}}]
        target = log / f"{version:020d}.json"
        target.write_text("\n".join(json.dumps(a) for a in actions) + "\n")
        os.utime(target, (stamp / 1000, stamp / 1000))
        version += 1

    def add(p: str, stamp: int) -> dict:
        return {"add": {"path": p, "partitionValues": {"part": p.split("/")[0][5:]}, "size": len(blob),
                        "modificationTime": stamp, "dataChange": True, "stats": json.dumps({"numRecords": 1})}}

    def remove(p: str, stamp: int) -> dict:
        return {"remove": {"path": p, "deletionTimestamp": stamp, "dataChange": True, "extendedFileMetadata": True,
                           "partitionValues": {"part": p.split("/")[0][5:]}, "size": len(blob)}}

    stamp = now - 20 * DAY_MS
    for start in range(0, files, per_commit):
        head = [] if start else [
            {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
            {"metaData": {"id": str(uuid.uuid4()), "format": {"provider": "parquet", "options": {}},
                          "schemaString": json.dumps(schema), "partitionColumns": ["part"], "configuration": {},
                          "createdTime": stamp}}]
        commit(head + [add(p, stamp) for p in paths[start:start + per_commit]], stamp, "WRITE")
        stamp += 1000
    removed = [p for i, p in enumerate(paths) if (i // PARTITIONS) % 2 == 0]  # half of every partition
    chunks = [removed[i:i + per_commit] for i in range(0, len(removed), per_commit)]
    stamp = now - 10 * DAY_MS
    for n, chunk in enumerate(chunks):
        stamp = now - 3600 * 1000 if n == len(chunks) - 1 else stamp + 1000  # the last: inside the retention
        commit([remove(p, stamp) for p in chunk], stamp, "DELETE")
    from deltalake import DeltaTable

    DeltaTable(str(root)).create_checkpoint()
    recent = set(chunks[-1])
    return {"versions": version, "files": files, "removed": len(removed), "removed_inside_retention": len(recent),
            "expected_survivors": sorted(set(paths) - set(removed) | recent)}


def data_files(root: Path) -> list[str]:
    """Relative paths of every file outside ``_delta_log`` (Delta's VACUUM may add commits there)."""
    out = []
    for folder, _, names in os.walk(root):
        rel = os.path.relpath(folder, root)
        if rel == "_delta_log" or rel.startswith("_delta_log" + os.sep):
            continue
        out += [os.path.normpath(os.path.join(rel, n)) for n in names]
    return sorted(out)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=100_000)
    p.add_argument("--per-commit", type=int, default=1000, help="files added (or removed) per commit")
    p.add_argument("--tmp", type=Path, default=None, help="folder for the tables (default: the system's temp)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "vacuum.json")
    args = p.parse_args(argv)
    import deltalake
    import pyspark

    from pipeline_opt.spark import get_spark

    result: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "software": {"python": platform.python_version(), "pyspark": pyspark.__version__,
                     "delta_spark": _version("delta-spark"), "deltalake": deltalake.__version__},
        "retention_hours": RETENTION_HOURS, "complete": False}

    def save() -> None:  # after every step, so a run cut short keeps what it measured
        args.out.write_text(json.dumps(result, indent=2) + "\n")

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        base = Path(tmp) / "source"
        facts, build_s = timed(lambda: build_table(base, args.files, args.per_commit))
        expected = facts.pop("expected_survivors")
        result["table"] = {**facts, "partitions": PARTITIONS, "files_per_commit": args.per_commit,
                           "build_s": round(build_s, 1)}
        result["files_deleted"] = {"expected": facts["removed"] - facts["removed_inside_retention"]}
        result["files_reported"], result["survivors_as_expected"] = {}, {}
        print(f"[vacuum] built {args.files:,} files, {facts['versions']} commits in {build_s:.1f} s", file=sys.stderr)
        copies = {name: Path(tmp) / name for name in ("from_log", "delta_sql", "vacuum_py")}
        for target in copies.values():
            shutil.copytree(base, target, copy_function=os.link)
        spark = get_spark("pipeline_opt-bench-vacuum")
        spark.range(10).count()  # warm the session up

        def step(name: str, fn) -> None:
            before = len(data_files(copies[name]))
            reported, seconds = timed(fn)
            after = data_files(copies[name])
            result[f"{name}_s"] = round(seconds, 2)
            result["files_deleted"][name] = before - len(after)  # counted on disk
            if reported is not None:
                result["files_reported"][name] = reported
            result["survivors_as_expected"][name] = after == expected
            print(f"[vacuum] {name}: {seconds:.2f} s, {before - len(after):,} files deleted", file=sys.stderr)
            save()

        step("from_log", lambda: vacuum_from_log(str(copies["from_log"]), RETENTION_HOURS, dry_run=False).files)
        step("delta_sql", lambda: spark.sql(f"VACUUM delta.`{copies['delta_sql']}` RETAIN {RETENTION_HOURS} HOURS")
             .collect() and None)
        step("vacuum_py", lambda: vacuum(spark, str(copies["vacuum_py"]), RETENTION_HOURS, dry_run=False).files)
        spark.stop()
    result["ratio_log_vs_vacuum_py"] = round(result["from_log_s"] / result["vacuum_py_s"], 4)
    result["ratio_log_vs_delta_sql"] = round(result["from_log_s"] / result["delta_sql_s"], 4)
    equal = all(result["survivors_as_expected"].values())
    result["same_files_survive"] = equal
    result["complete"] = True
    save()
    print(json.dumps(result, indent=2))
    same_counts = len({*result["files_deleted"].values(), *result["files_reported"].values()}) == 1
    return 0 if equal and same_counts else 1


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
