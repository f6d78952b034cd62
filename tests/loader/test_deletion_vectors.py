"""Our deletion-vector decoding agrees row for row with delta-rs on vectors Spark wrote."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from pipeline_opt.loader.deletion_vectors import deleted_rows, keep_mask, z85_decode
from pipeline_opt.loader.snapshot import load_snapshot
from pipeline_opt.loader.source import FileSource


@pytest.mark.parametrize("name", ["dv", "colmap", "dense"])
def test_masks_match_delta_rs(tables, name):
    path, _ = tables[name]
    snap = load_snapshot(path)
    read = FileSource().bytes_reader()
    reference = {r["filepath"]: np.array(r["selection_vector"], dtype=bool)
                 for r in pa.table(DeltaTable(str(path)).deletion_vectors()).to_pylist()}
    with_dv = [f for f in snap.files if f.dv is not None]
    assert len(with_dv) == len(reference) > 0
    for f in with_dv:
        ours = keep_mask(f.num_records, deleted_rows(f.dv, read, snap.uri))
        ref = reference[snap.uri + "/" + f.path]
        ref = np.concatenate([ref, np.ones(f.num_records - len(ref), dtype=bool)])
        assert np.array_equal(ours, ref)
        assert f.live_rows == int(ours.sum())


def test_z85_known_value():
    assert z85_decode("HelloWorld") == bytes([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])
