"""The one Delta-log reader, measured before choosing its parts: deletion-vector masks and snapshot reads.

Run: .venv/bin/python benchmarks/delta_log.py [--lakehouse demo-lakehouse] [--files 100000 1000000]
     [--only health]
     → benchmarks/results/delta_log.json

1. Masks: decoding Delta's RoaringBitmapArray with CRoaring (``pyroaring``, what ``delta.deletion_vectors`` uses)
   vs the NumPy decoder the package had before (kept below as the reference), on vectors of 1,000,000-row files at
   several densities and on every vector of the demo lakehouse's ``lineitem``. Both must give the same rows.
2. Snapshots: ``read_snapshot`` (delta-rs add actions + our replay of the deletion-vector descriptors) vs delta-rs'
   own ``deletion_vectors()`` (which decodes every mask up front; sampled ``--repeats`` times, each in a child process
   killed after ``--timeout`` seconds, since it sometimes never returns), on the demo ``lineitem``; and on a
   100,000-file log without vectors, ``table_health`` vs merely reading the add actions with delta-rs.
3. Health at scale (``log_only_at_scale``), for each ``--files`` count (e.g. ``--files 100000 1000000``): a log as a
   long-lived table has it, the files added over ``--commits`` JSON commits, measured once without a checkpoint and
   once with the checkpoint delta-rs' ``create_checkpoint()`` writes plus three compaction-like commits after it
   (removes and adds); ``table_health`` vs ``DeltaTable(path).get_add_actions(flatten=True)``, interleaved, median
   wall and CPU seconds of ``--repeats`` each, and their ratios.

``--only health`` runs part 3 (and the single-commit ``log_only`` case of part 2) alone and merges them into the
existing JSON (other keys are kept).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pyroaring import BitMap

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline_opt.delta import read_snapshot  # noqa: E402
from pipeline_opt.delta.deletion_vectors import _MAGIC, _roaring_array  # noqa: E402
from pipeline_opt.delta.fs import resolve  # noqa: E402
from pipeline_opt.tables.health import table_health  # noqa: E402
from tests.harness.synthetic_log import write_synthetic_log  # noqa: E402

ROWS = 1_000_000
DENSITIES = {"sparse (0.1 % deleted)": 0.001, "medium (10 %)": 0.10, "dense (50 %)": 0.50, "runs (30 % in runs)": -1}


def numpy_roaring_array(blob: bytes) -> np.ndarray:
    """The package's previous decoder: portable 32-bit Roaring containers decoded with NumPy."""
    magic, buckets = struct.unpack_from("<iq", blob, 0)
    assert magic == _MAGIC
    pos, out = 12, []
    for _ in range(buckets):
        (high,) = struct.unpack_from("<i", blob, pos)
        values, pos = _numpy_roaring32(blob, pos + 4)
        out.append(values.astype(np.int64) | (np.int64(high) << 32))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _numpy_roaring32(blob: bytes, pos: int) -> tuple:
    (cookie,) = struct.unpack_from("<I", blob, pos)
    pos += 4
    if cookie & 0xFFFF == 12347:  # SERIAL_COOKIE: has run containers
        n = (cookie >> 16) + 1
        runs = np.unpackbits(np.frombuffer(blob, np.uint8, (n + 7) // 8, pos), bitorder="little")[:n]
        pos += (n + 7) // 8
        with_offsets = n >= 4
    else:  # SERIAL_COOKIE_NO_RUNCONTAINER
        (n,) = struct.unpack_from("<I", blob, pos)
        pos += 4
        runs, with_offsets = np.zeros(n, dtype=np.uint8), True
    header = np.frombuffer(blob, "<u2", 2 * n, pos).reshape(n, 2)
    pos += 4 * n + (4 * n if with_offsets else 0)
    values = []
    for i in range(n):
        key, card = int(header[i, 0]) << 16, int(header[i, 1]) + 1
        if runs[i]:
            (nruns,) = struct.unpack_from("<H", blob, pos)
            pairs = np.frombuffer(blob, "<u2", 2 * nruns, pos + 2).reshape(nruns, 2).astype(np.int64)
            pos += 2 + 4 * nruns
            vals = np.concatenate([np.arange(s, s + n_ + 1) for s, n_ in pairs]) if nruns else np.zeros(0, np.int64)
        elif card <= 4096:
            vals = np.frombuffer(blob, "<u2", card, pos).astype(np.int64)
            pos += 2 * card
        else:
            bits = np.unpackbits(np.frombuffer(blob, np.uint8, 8192, pos), bitorder="little")
            vals = np.flatnonzero(bits).astype(np.int64)
            pos += 8192
        values.append(vals + key)
    return (np.concatenate(values) if values else np.zeros(0, np.int64)), pos


def synthetic_vector(density: float, seed: int = 0) -> bytes:
    """A Delta RoaringBitmapArray of deleted rows of a ``ROWS``-row file (one 32-bit bucket), as Delta writes it."""
    rng = np.random.default_rng(seed)
    if density < 0:  # deletes in runs, as a DELETE on a sorted key range leaves them
        starts = rng.choice(ROWS - 1000, 300, replace=False)
        rows = np.unique(np.concatenate([np.arange(s, s + 1000) for s in starts]))
    else:
        rows = np.flatnonzero(rng.random(ROWS) < density)
    bitmap = BitMap(rows.astype(np.uint32))
    bitmap.run_optimize()
    return struct.pack("<iq", _MAGIC, 1) + struct.pack("<i", 0) + bitmap.serialize()


def timed(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def masks(lakehouse: Path | None, repeats: int) -> dict:
    cases = {name: synthetic_vector(d) for name, d in DENSITIES.items()}
    if lakehouse is not None and (lakehouse / "lineitem" / "_delta_log").is_dir():
        snap = read_snapshot(str(lakehouse / "lineitem"))
        blobs = [_blob(snap.uri, f.dv) for f in snap.files if f.dv is not None]
        cases[f"demo lineitem: all {len(blobs)} vectors"] = blobs
    out = {}
    for name, blob in cases.items():
        blobs = blob if isinstance(blob, list) else [blob]
        ours = [_roaring_array(b) for b in blobs]
        assert all(np.array_equal(a, numpy_roaring_array(b)) for a, b in zip(ours, blobs)), name
        croaring = timed(lambda: [_roaring_array(b) for b in blobs], repeats)
        numpy = timed(lambda: [numpy_roaring_array(b) for b in blobs], repeats)
        out[name] = {"vectors": len(blobs), "deleted_rows": int(sum(len(a) for a in ours)),
                     "pyroaring_ms": round(croaring * 1000, 3), "numpy_ms": round(numpy * 1000, 3),
                     "speedup": round(numpy / croaring, 2)}
        print(f"[delta_log] masks {name}: pyroaring {croaring * 1000:.2f} ms, numpy {numpy * 1000:.2f} ms",
              file=sys.stderr)
    return out


def _blob(root: str, dv: dict) -> bytes:
    from pipeline_opt.delta.deletion_vectors import dv_file_path

    if dv["storageType"] == "i":
        from pipeline_opt.delta.deletion_vectors import z85_decode

        return z85_decode(dv["pathOrInlineDv"])
    fs, path = resolve(dv_file_path(root, dv))
    with fs.open_input_stream(path) as fh:
        data = fh.read()
    offset = int(dv.get("offset") or 1)
    size = struct.unpack(">i", data[offset:offset + 4])[0]
    return data[offset + 4:offset + 4 + size]


def delta_rs_vectors(path: str, timeout_s: float) -> float | None:
    """Seconds delta-rs' ``deletion_vectors()`` takes in a child process, or None past ``timeout_s``."""
    code = ("import sys, time; from deltalake import DeltaTable; t = time.perf_counter(); "
            "r = DeltaTable(sys.argv[1]).deletion_vectors(); n = sum(1 for _ in r); "
            "print(time.perf_counter() - t)")
    try:
        done = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None
    return float(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None


def snapshots(lakehouse: Path | None, files: int, repeats: int, timeout_s: float) -> dict:
    out: dict = {}
    if lakehouse is not None and (lakehouse / "lineitem" / "_delta_log").is_dir():
        path = str(lakehouse / "lineitem")
        snap = read_snapshot(path)
        ours = timed(lambda: read_snapshot(path).deleted, repeats)
        # delta-rs sometimes returns in a fraction of a second and sometimes never: sample it several times
        theirs = [delta_rs_vectors(path, timeout_s) for _ in range(repeats)]
        out["demo_lineitem"] = {"files": len(snap.paths), "files_with_vectors": len(snap.vectors),
                                "deleted_rows": int(snap.deleted.sum()), "read_snapshot_s": round(ours, 3),
                                "delta_rs_deletion_vectors_s": [None if t is None else round(t, 3) for t in theirs],
                                "delta_rs_timed_out": sum(t is None for t in theirs),
                                "delta_rs_timeout_s": timeout_s}
    out["log_only"] = log_only(files, repeats)
    return out


def log_only(files: int, repeats: int) -> dict:
    """One commit of ``files`` adds plus delta-rs' checkpoint (the test harness' log): health vs delta-rs."""
    with tempfile.TemporaryDirectory() as tmp:
        sizes = np.random.default_rng(0).integers(10**5, 10**8, files)
        path = write_synthetic_log(Path(tmp) / "t", sizes, [f"p{i % 50}" for i in range(files)])
        from deltalake import DeltaTable

        adds = timed(lambda: DeltaTable(str(path)).get_add_actions(flatten=True), repeats)
        health = timed(lambda: table_health(str(path)), repeats)
        return {"files": files, "table_health_s": round(health, 3),
                "deltalake_add_actions_s": round(adds, 3), "ratio": round(health / adds, 2)}


def write_commits_log(root: Path, sizes: np.ndarray, parts: list[str], commits: int) -> Path:
    """A partitioned log-only table whose files were added over ``commits`` JSON commits (no checkpoint yet)."""
    log = root / "_delta_log"
    log.mkdir(parents=True)
    schema = json.dumps({"type": "struct", "fields": [{"name": "id", "type": "long", "nullable": True, "metadata": {}},
                                                      {"name": "part", "type": "string", "nullable": True,
                                                       "metadata": {}}]})
    head = [json.dumps({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}),
            json.dumps({"metaData": {"id": "00000000-0000-0000-0000-000000000001",
                                     "format": {"provider": "parquet", "options": {}}, "schemaString": schema,
                                     "partitionColumns": ["part"], "configuration": {},
                                     "createdTime": 1_700_000_000_000}})]
    bounds = np.linspace(0, len(sizes), commits + 1).astype(int)
    for v in range(commits):
        lines = head if v == 0 else []
        lines = lines + [_add_line(i, int(sizes[i]), parts[i]) for i in range(bounds[v], bounds[v + 1])]
        lines.append(json.dumps({"commitInfo": {"timestamp": 1_700_000_000_000 + v, "operation": "WRITE"}}))
        (log / f"{v:020d}.json").write_text("\n".join(lines) + "\n")
    return root


def _add_line(i: int, size: int, part: str, tag: str = "") -> str:
    return (f'{{"add":{{"path":"part={part}/part-{i:07d}{tag}-c000.snappy.parquet",'
            f'"partitionValues":{{"part":"{part}"}},"size":{size},"modificationTime":1700000000000,"dataChange":true,'
            f'"stats":"{{\\"numRecords\\":{max(size // 50, 1)}}}"}}}}')


def compaction_commits(root: Path, sizes: np.ndarray, parts: list[str], first: int, count: int = 3,
                       per_commit: int = 100) -> None:
    """``count`` commits after the checkpoint, each removing ``per_commit`` files and adding their compacted copy."""
    log = root / "_delta_log"
    for k in range(count):
        lines = []
        for i in range(k * per_commit, (k + 1) * per_commit):
            lines.append(json.dumps({"remove": {"path": f"part={parts[i]}/part-{i:07d}-c000.snappy.parquet",
                                                "deletionTimestamp": 1_700_000_100_000, "dataChange": False}}))
            lines.append(_add_line(i, int(sizes[i]), parts[i], tag=f"-z{k}"))
        lines.append(json.dumps({"commitInfo": {"timestamp": 1_700_000_100_000 + k, "operation": "OPTIMIZE"}}))
        (log / f"{first + k:020d}.json").write_text("\n".join(lines) + "\n")


def _wall_cpu(fn) -> tuple[float, float]:
    r0, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    fn()
    wall, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def health_vs_delta_rs(path: str, repeats: int) -> dict:
    """``table_health`` and delta-rs' add-action read, interleaved, after one warm-up of each."""
    from deltalake import DeltaTable

    ours = lambda: table_health(path)  # noqa: E731
    theirs = lambda: DeltaTable(path).get_add_actions(flatten=True)  # noqa: E731
    ours(), theirs()
    samples = {"ours": [], "theirs": []}
    for _ in range(repeats):
        samples["ours"].append(_wall_cpu(ours))
        samples["theirs"].append(_wall_cpu(theirs))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in samples.items()}
    (hw, hc), (dw, dc) = med["ours"], med["theirs"]
    return {"table_health_s": round(hw, 3), "deltalake_add_actions_s": round(dw, 3), "ratio": round(hw / dw, 2),
            "table_health_cpu_s": round(hc, 3), "deltalake_add_actions_cpu_s": round(dc, 3),
            "cpu_ratio": round(hc / dc, 2), "repeats": repeats,
            "table_health_walls_s": [round(w, 3) for w, _ in samples["ours"]],
            "deltalake_walls_s": [round(w, 3) for w, _ in samples["theirs"]]}


def at_scale(files: int, commits: int, repeats: int) -> dict:
    from deltalake import DeltaTable

    sizes = np.random.default_rng(0).integers(10**5, 10**8, files)
    parts = [f"p{i % 50}" for i in range(files)]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        root = write_commits_log(Path(tmp) / "t", sizes, parts, commits)
        built = time.perf_counter() - start
        out = {"files": files, "commits": commits, "build_s": round(built, 1)}
        out["without_checkpoint"] = health_vs_delta_rs(str(root), repeats)
        print(f"[delta_log] {files:,} files, no checkpoint: {out['without_checkpoint']}", file=sys.stderr)
        start = time.perf_counter()
        DeltaTable(str(root)).create_checkpoint()
        compaction_commits(root, sizes, parts, first=commits)
        out["checkpoint_s"] = round(time.perf_counter() - start, 1)
        snap = read_snapshot(str(root))
        assert len(snap.paths) == files and table_health(str(root)).stats.files == files
        out["with_checkpoint"] = health_vs_delta_rs(str(root), repeats)
        out["with_checkpoint"]["commits_after_checkpoint"] = 3
        print(f"[delta_log] {files:,} files, checkpoint + 3 commits: {out['with_checkpoint']}", file=sys.stderr)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lakehouse", type=Path, default=ROOT / "demo-lakehouse")
    p.add_argument("--files", type=int, nargs="+", default=[100_000],
                   help="file counts of the synthetic logs (the first also for the single-commit log_only case)")
    p.add_argument("--commits", type=int, default=100, help="JSON commits the at-scale logs' files are added over")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--only", choices=["all", "health"], default="all",
                   help="health: only the at-scale health part, merged into the existing --out JSON")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds delta-rs' deletion_vectors() may take")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "delta_log.json")
    args = p.parse_args(argv)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start"
    if args.only == "health":
        result = json.loads(args.out.read_text()) if args.out.exists() else {}
        result.setdefault("snapshots", {})["log_only"] = log_only(args.files[0], args.repeats)
    else:
        result = {"machine": machine, "masks": masks(args.lakehouse, args.repeats),
                  "snapshots": snapshots(args.lakehouse, args.files[0], args.repeats, args.timeout)}
    result["machine_at_scale"] = machine
    result["snapshots"]["log_only_at_scale"] = {str(n): at_scale(n, args.commits, args.repeats) for n in args.files}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
