"""The one Delta-log reader, measured before choosing its parts: deletion-vector masks and snapshot reads.

Run: .venv/bin/python benchmarks/delta_log.py [--lakehouse demo-lakehouse] [--files 100000]
     → benchmarks/results/delta_log.json

1. Masks: decoding Delta's RoaringBitmapArray with CRoaring (``pyroaring``, what ``delta.deletion_vectors`` uses)
   vs the NumPy decoder the package had before (kept below as the reference), on vectors of 1,000,000-row files at
   several densities and on every vector of the demo lakehouse's ``lineitem``. Both must give the same rows.
2. Snapshots: ``read_snapshot`` (delta-rs add actions + our replay of the deletion-vector descriptors) vs delta-rs'
   own ``deletion_vectors()`` (which decodes every mask up front; sampled ``--repeats`` times, each in a child process
   killed after ``--timeout`` seconds, since it sometimes never returns), on the demo ``lineitem``; and on a
   100,000-file log without vectors, ``table_health`` vs merely reading the add actions with delta-rs.
"""
from __future__ import annotations

import argparse
import json
import platform
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
    with tempfile.TemporaryDirectory() as tmp:
        sizes = np.random.default_rng(0).integers(10**5, 10**8, files)
        log_only = write_synthetic_log(Path(tmp) / "t", sizes, [f"p{i % 50}" for i in range(files)])
        from deltalake import DeltaTable

        adds = timed(lambda: DeltaTable(str(log_only)).get_add_actions(flatten=True), repeats)
        health = timed(lambda: table_health(str(log_only)), repeats)
        out["log_only"] = {"files": files, "table_health_s": round(health, 3),
                           "deltalake_add_actions_s": round(adds, 3), "ratio": round(health / adds, 2)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lakehouse", type=Path, default=ROOT / "demo-lakehouse")
    p.add_argument("--files", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds delta-rs' deletion_vectors() may take")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "delta_log.json")
    args = p.parse_args(argv)
    result = {"machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
              "masks": masks(args.lakehouse, args.repeats),
              "snapshots": snapshots(args.lakehouse, args.files, args.repeats, args.timeout)}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
