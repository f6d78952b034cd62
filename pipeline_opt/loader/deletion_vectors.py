"""Deletion vectors: their descriptors from the Delta log, and their keep masks decoded from the bitmap files.

Why not ``DeltaTable.deletion_vectors()``: on deltalake 1.6.6 it materialises every vector of the table up front and
did not return within minutes on the demo lineitem (1,240 vectors); a loader needs the counts at plan time (the
descriptor's ``cardinality``) and each mask only when a worker opens that file. Invariants: descriptors come from the
log replayed up to the pinned version (last checkpoint at or below it, then the JSON commits after it), only the
``_delta_log`` folder is listed, never the data folders; a mask is exact (Delta's RoaringBitmapArray format: magic
1681511377, 64-bit buckets of portable 32-bit Roaring bitmaps) and is checked against the descriptor's cardinality.
"""
from __future__ import annotations

import json
import re
import struct
import uuid
from typing import Mapping, Optional
from urllib.parse import unquote

import numpy as np
import pyarrow.parquet as pq

from pipeline_opt.loader.errors import LoaderError

_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_Z85_INDEX = {c: i for i, c in enumerate(_Z85)}
_MAGIC = 1681511377
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?(?:\.[0-9a-f-]{36})?\.parquet$")


def z85_decode(text: str) -> bytes:
    if len(text) % 5:
        raise LoaderError(f"bad Z85 text of length {len(text)}")
    out = bytearray()
    for i in range(0, len(text), 5):
        value = 0
        for c in text[i:i + 5]:
            value = value * 85 + _Z85_INDEX[c]
        out += value.to_bytes(4, "big")
    return bytes(out)


# -- descriptors from the log -------------------------------------------------------------------------------------
def descriptors(fs, log_dir: str, version: int) -> dict:
    """Decoded relative data path → deletion-vector descriptor, for files live at ``version`` that have one."""
    from pyarrow.fs import FileSelector

    names = [info.base_name for info in fs.get_file_info(FileSelector(log_dir))]
    parts: dict = {}
    for name in names:
        m = _CHECKPOINT.match(name)
        if m and int(m.group(1)) <= version:
            parts.setdefault(int(m.group(1)), []).append(name)
    complete = [v for v, files in parts.items() if _complete(files)]
    start = max(complete) if complete else -1
    live: dict = {}
    if start >= 0:
        for name in sorted(parts[start]):
            _read_checkpoint(fs, f"{log_dir}/{name}", log_dir, live)
    for v in range(start + 1, version + 1):
        with fs.open_input_stream(f"{log_dir}/{v:020d}.json") as fh:
            actions = [json.loads(line) for line in fh.read().decode().splitlines() if line.strip()]
        # a DELETE with deletion vectors removes and re-adds the same path in one commit, in any order
        for action in sorted(actions, key=lambda a: "add" in a):
            _apply(action, live)
    return {p: dv for p, dv in live.items() if dv}


def _complete(files: list) -> bool:
    m = _CHECKPOINT.match(files[0])
    return m.group(3) is None or len(files) == int(m.group(3))


def _apply(action: Mapping, live: dict) -> None:
    if "add" in action:
        add = action["add"]
        live[unquote(add["path"])] = add.get("deletionVector")
    elif "remove" in action:
        live.pop(unquote(action["remove"]["path"]), None)


def _read_checkpoint(fs, path: str, log_dir: str, live: dict) -> None:
    with fs.open_input_file(path) as fh:
        pf = pq.ParquetFile(fh)
        names = pf.schema_arrow.names
        table = pf.read(columns=[c for c in ("add", "sidecar") if c in names])
    if "add" in table.column_names:
        for add in table.column("add").to_pylist():
            if add is not None:
                live[unquote(add["path"])] = add.get("deletionVector")
    if "sidecar" in table.column_names:  # v2 checkpoints keep their add actions in sidecar files
        for side in table.column("sidecar").to_pylist():
            if side is not None:
                _read_checkpoint(fs, f"{log_dir}/_sidecars/{unquote(side['path'])}", log_dir, live)


# -- masks ----------------------------------------------------------------------------------------------------------
def dv_file_path(root: str, descriptor: Mapping) -> str:
    kind, value = descriptor["storageType"], descriptor["pathOrInlineDv"]
    if kind == "u":
        prefix, encoded = value[:-20], value[-20:]
        name = f"deletion_vector_{uuid.UUID(bytes=z85_decode(encoded))}.bin"
        return f"{root}/{prefix}/{name}" if prefix else f"{root}/{name}"
    if kind == "p":
        return unquote(value)
    raise LoaderError(f"deletion vector storage type {kind!r} has no file")


def deleted_rows(descriptor: Mapping, read_file, root: str) -> np.ndarray:
    """Row indexes the vector deletes; ``read_file(path) -> bytes`` reads a DV file (callers cache it)."""
    if descriptor["storageType"] == "i":
        blob = z85_decode(descriptor["pathOrInlineDv"])
    else:
        data = read_file(dv_file_path(root, descriptor))
        offset = int(descriptor.get("offset") or 1)
        size = struct.unpack(">i", data[offset:offset + 4])[0]
        blob = data[offset + 4:offset + 4 + size]
    rows = _roaring_array(blob)
    if len(rows) != int(descriptor["cardinality"]):
        raise LoaderError(f"deletion vector decodes to {len(rows)} rows, its descriptor says {descriptor['cardinality']}")
    return rows


def keep_mask(num_rows: int, deleted: np.ndarray) -> np.ndarray:
    mask = np.ones(num_rows, dtype=bool)
    mask[deleted[deleted < num_rows]] = False
    return mask


def _roaring_array(blob: bytes) -> np.ndarray:
    magic, buckets = struct.unpack_from("<iq", blob, 0)
    if magic != _MAGIC:
        raise LoaderError(f"not a Delta deletion vector (magic {magic})")
    pos, out = 12, []
    for _ in range(buckets):
        (high,) = struct.unpack_from("<i", blob, pos)
        values, pos = _roaring32(blob, pos + 4)
        out.append(values.astype(np.int64) | (np.int64(high) << 32))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _roaring32(blob: bytes, pos: int) -> tuple:
    """Decode one portable 32-bit Roaring bitmap at ``pos``; returns (values, end position)."""
    (cookie,) = struct.unpack_from("<I", blob, pos)
    pos += 4
    if cookie & 0xFFFF == 12347:  # SERIAL_COOKIE: has run containers
        n = (cookie >> 16) + 1
        runs = np.unpackbits(np.frombuffer(blob, np.uint8, (n + 7) // 8, pos), bitorder="little")[:n]
        pos += (n + 7) // 8
        with_offsets = n >= 4
    elif cookie == 12346:  # SERIAL_COOKIE_NO_RUNCONTAINER
        (n,) = struct.unpack_from("<I", blob, pos)
        pos += 4
        runs, with_offsets = np.zeros(n, dtype=np.uint8), True
    else:
        raise LoaderError(f"bad Roaring bitmap cookie {cookie}")
    header = np.frombuffer(blob, "<u2", 2 * n, pos).reshape(n, 2)
    pos += 4 * n + (4 * n if with_offsets else 0)
    values = []
    for i in range(n):
        key, card = int(header[i, 0]) << 16, int(header[i, 1]) + 1
        if runs[i]:
            (nruns,) = struct.unpack_from("<H", blob, pos)
            pairs = np.frombuffer(blob, "<u2", 2 * nruns, pos + 2).reshape(nruns, 2).astype(np.int64)
            pos += 2 + 4 * nruns
            vals = np.concatenate([np.arange(s, s + l + 1) for s, l in pairs]) if nruns else np.zeros(0, np.int64)
        elif card <= 4096:
            vals = np.frombuffer(blob, "<u2", card, pos).astype(np.int64)
            pos += 2 * card
        else:
            bits = np.unpackbits(np.frombuffer(blob, np.uint8, 8192, pos), bitorder="little")
            vals = np.flatnonzero(bits).astype(np.int64)
            pos += 8192
        values.append(vals + key)
    return (np.concatenate(values) if values else np.zeros(0, np.int64)), pos
