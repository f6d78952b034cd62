"""Our deletion-vector decoding agrees row for row with delta-rs on vectors Spark wrote; a corrupt one is refused."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from pipeline_opt.delta import read_snapshot
from pipeline_opt.delta.deletion_vectors import deleted_rows, keep_mask, z85_decode
from pipeline_opt.delta.fs import resolve
from pipeline_opt.errors import DeltaLogError


def read_bytes(uri: str) -> bytes:
    fs, path = resolve(uri)
    with fs.open_input_stream(path) as fh:
        return fh.read()


@pytest.mark.parametrize("name", ["dv", "colmap", "dense"])
def test_masks_match_delta_rs(tables, name):
    path, _ = tables[name]
    snap = read_snapshot(path)
    reference = {r["filepath"]: np.array(r["selection_vector"], dtype=bool)
                 for r in pa.table(DeltaTable(str(path)).deletion_vectors()).to_pylist()}
    with_dv = [f for f in snap.files if f.dv is not None]
    assert len(with_dv) == len(reference) > 0
    for f in with_dv:
        ours = keep_mask(f.num_records, deleted_rows(f.dv, read_bytes, snap.uri))
        ref = reference[snap.uri + "/" + f.path]
        ref = np.concatenate([ref, np.ones(f.num_records - len(ref), dtype=bool)])
        assert np.array_equal(ours, ref)
        assert f.live_rows == int(ours.sum())


def test_z85_known_value():
    assert z85_decode("HelloWorld") == bytes([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])


def test_a_vector_that_does_not_match_its_descriptor_is_refused(tables):
    path, _ = tables["dense"]
    (f,) = [f for f in read_snapshot(path).files if f.dv is not None]
    with pytest.raises(DeltaLogError, match="descriptor says"):
        deleted_rows({**f.dv, "cardinality": f.dv["cardinality"] + 1}, read_bytes, read_snapshot(path).uri)
    with pytest.raises(DeltaLogError, match="magic"):
        deleted_rows({**f.dv, "offset": 1}, lambda uri: b"\x00\x00\x00\x00\x10" + bytes(16), "/nowhere")
    with pytest.raises(DeltaLogError, match="Z85"):
        z85_decode("not~z85!")
