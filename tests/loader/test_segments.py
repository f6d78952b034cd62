"""Workers' shared-memory slots: reused window after window and epoch after epoch, never under a batch still held.

Real Delta tables (delta-rs writer) and real worker processes; a batch's slot is found from its address among the
slots' arrays, as the loader maps them.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch
from deltalake import write_deltalake

from pipeline_opt.loader import DeltaDataset, DeltaLoader

ROWS, BATCH, WINDOW = 20000, 100, 1000  # 20 windows: more than the slots of one worker


def _table(tmp_path):
    path = tmp_path / "t"
    for part in np.array_split(np.arange(ROWS), 4):  # four appends: four data files
        write_deltalake(str(path), pa.table({"id": part, "x": part * 0.5}), mode="append")
    return path


def _loader(path, workers=2):
    ds = DeltaDataset(path, batch_size=BATCH, shuffle=True, seed=7, shuffle_buffer=WINDOW)
    return DeltaLoader(ds, num_workers=workers, persistent_workers=workers > 0)


def _slot(batch, pool):
    """The pool slot whose array holds ``batch`` (None: a fresh segment)."""
    address = batch["id"].data_ptr()
    for slot, array in enumerate(pool._arrays):
        start = array.__array_interface__["data"][0]
        if start <= address < start + array.nbytes:
            return slot
    return None


def _contents(batches) -> list:
    """Each batch's rows, batches sorted (workers deliver the same batches in another order)."""
    return sorted((b["id"].tolist(), b["x"].tolist()) for b in batches)


def test_slots_are_reused_across_windows_and_epochs(tmp_path):
    path = _table(tmp_path)
    expected = _contents(_loader(path, 0))
    loader = _loader(path)
    pool = None
    for epoch in range(2):
        seen, got = [], []
        for batch in loader:
            pool = loader._workers[2]
            seen.append(_slot(batch, pool))
            got.append((batch["id"].tolist(), batch["x"].tolist()))
        assert None not in seen  # nothing held: every window found a free slot
        assert len(set(seen)) <= pool.workers * pool.slots < len(loader) // (WINDOW // BATCH)
        if epoch == 0:
            assert sorted(got) == expected  # the same batches as without workers
        else:
            assert sorted(i for ids, _ in got for i in ids) == list(range(ROWS)) and got != expected  # reshuffled


def test_a_held_batch_is_never_overwritten_while_its_slot_serves_others(tmp_path):
    path = _table(tmp_path)
    expected = _contents(_loader(path, 0))
    loader = _loader(path)
    it = iter(loader)
    held = next(it)
    copy = {k: v.clone() for k, v in held.items()}
    pool = loader._workers[2]
    mine = _slot(held, pool)
    later = [(b["id"].tolist(), b["x"].tolist(), _slot(b, pool)) for b in it]
    assert mine is not None and all(torch.equal(held[k], copy[k]) for k in copy)
    # the held batch's window keeps its slot; the other windows of that worker cycle through the rest
    assert mine not in {s for _, _, s in later[WINDOW // BATCH:]}
    assert sorted(_contents([copy]) + [(i, x) for i, x, _ in later]) == expected
    del held
    again = [_slot(b, pool) for b in loader]  # the next epoch: the slot is free again and serves its worker
    assert mine in again


def test_holding_every_batch_falls_back_to_fresh_segments(tmp_path):
    path = _table(tmp_path)
    expected = _contents(_loader(path, 0))
    loader = _loader(path)
    held = [(b, {k: v.clone() for k, v in b.items()}) for b in loader]  # the caller keeps every batch
    pool = loader._workers[2]
    slots = [_slot(b, pool) for b, _ in held]
    assert None in slots  # the slots ran out: later windows came in fresh segments
    assert all(torch.equal(b[k], c[k]) for b, c in held for k in c)
    assert _contents([b for b, _ in held]) == expected


def test_an_epoch_left_early_gives_its_slots_back(tmp_path):
    path = _table(tmp_path)
    loader = _loader(path)
    pool = None
    for _ in range(4):  # each time leave with windows in flight in the workers and in torch's queue
        for k, batch in enumerate(loader):
            pool = loader._workers[2]
            if k == 25:
                break
        del batch
    slots = [_slot(b, pool) for b in loader]
    assert None not in slots  # the windows dropped in flight did not keep their slots taken
    assert 4 * 26 + len(slots) == len(loader)  # each iteration went on where the previous one stopped
