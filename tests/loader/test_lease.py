"""Reader leases and files deleted under a pinned version: VACUUM keeps what a running loader needs; another
engine's deletion mid-epoch is one clear error, never a partial or skipped batch."""
from __future__ import annotations

import json
import os
import time

import pytest

from pipeline_opt.delta.leases import LEASE_DIR, LeaseHolder, active_leases, commit_time, retention_for
from pipeline_opt.delta.snapshot import read_snapshot
from pipeline_opt.loader import DeltaDataset, DeltaLoader
from pipeline_opt.loader.errors import MissingFileError


@pytest.fixture()
def replaced(spark, tmp_path):
    """Version 0: 1.2 M ids in 60 files; version 1 overwrites them with ids 1000..1199."""
    path = str(tmp_path / "t")
    spark.range(0, 1_200_000, numPartitions=60).write.format("delta").save(path)
    spark.range(1000, 1200, numPartitions=1).write.format("delta").mode("overwrite").save(path)
    return path


def test_a_loader_holds_a_lease_while_it_iterates(replaced):
    loader = DeltaLoader(DeltaDataset(replaced, batch_size=100_000, version=0))
    batches = iter(loader)
    next(batches)
    (lease,) = active_leases(replaced)
    assert lease.version == 0 and lease.version_time == pytest.approx(commit_time(replaced, 0))
    assert lease.version_time <= commit_time(replaced, 1)
    for _ in batches:
        pass
    assert active_leases(replaced) == []


def test_leases_expire_and_bad_ones_are_ignored(replaced, tmp_path):
    holder = LeaseHolder(replaced, 0, ttl_s=60)
    holder.renew(now=time.time() - 3600)  # written an hour ago with a minute to live: stale
    folder = tmp_path / "t" / LEASE_DIR
    (folder / "garbage.json").write_bytes(b"\xff not json")
    (folder / "shape.json").write_text(json.dumps({"version": "zero"}))
    assert active_leases(replaced) == []
    fresh = LeaseHolder(replaced, 0)
    fresh.renew()
    assert [lease.version for lease in active_leases(replaced)] == [0]
    fresh.release()
    assert active_leases(replaced) == []


def test_retention_reaches_back_to_the_oldest_leased_commit(replaced):
    now = time.time()
    holder = LeaseHolder(replaced, 0)
    holder.renew(now)
    (lease,) = active_leases(replaced, now=now)
    assert retention_for(168, [], now) == 168
    assert retention_for(0, [lease], now) * 3600 >= now - lease.version_time
    assert retention_for(1000, [lease], now) == 1000
    holder.release()


@pytest.mark.parametrize("workers", [0, 1])
def test_a_file_deleted_mid_epoch_is_one_clear_error(replaced, workers):
    # files bigger than the window are read one after another, so most are still unopened after the first batch
    dataset = DeltaDataset(replaced, batch_size=10_000, version=0, shuffle_buffer=10_000)
    snapshot = read_snapshot(replaced, 0)
    delivered = []
    with pytest.raises(MissingFileError) as caught:
        for i, batch in enumerate(DeltaLoader(dataset, num_workers=workers)):
            delivered.append(batch["id"])
            if i == 0:  # another engine's VACUUM removes the files version 0 still needs
                for f in snapshot.files:
                    os.remove(os.path.join(replaced, f.path))
    message = str(caught.value)
    assert "version 0" in message and "latest version" in message and "\n" not in message
    assert all(len(ids) == 10_000 for ids in delivered)  # whatever came before the error came whole
    assert 1 <= len(delivered) < 120  # read-ahead may have opened a few files before they went


def test_vacuum_keeps_what_a_running_loader_holds(spark, replaced):
    from pipeline_opt.tables.vacuum import vacuum

    snapshot = read_snapshot(replaced, 0)
    loader = DeltaLoader(DeltaDataset(replaced, batch_size=300_000, version=0))
    batches = iter(loader)
    ids = [next(batches)["id"]]
    held = vacuum(spark, replaced, 0, dry_run=False, allow_unsafe=True)
    assert held.files == 0 and held.held_by and held.retention_hours > 0
    assert all(os.path.exists(os.path.join(replaced, f.path)) for f in snapshot.files)
    ids += [b["id"] for b in batches]  # the epoch at version 0 finishes whole
    assert sorted(int(i) for t in ids for i in t) == list(range(1_200_000))
    released = vacuum(spark, replaced, 0, dry_run=False, allow_unsafe=True)  # the lease went with the epoch
    assert released.files == len(snapshot.files) and not released.held_by
    assert not any(os.path.exists(os.path.join(replaced, f.path)) for f in snapshot.files)


def test_nan_retention_is_refused():
    from pipeline_opt.tables.vacuum import UnsafeRetentionError, check_retention

    with pytest.raises(UnsafeRetentionError, match="not a finite number"):
        check_retention(float("nan"), allow_unsafe=True)


def test_deletion_vectors_inside_a_spark_checkpoint(spark, tmp_path):
    """Spark checkpoints every 10 commits by default; the deletion vectors then come from the checkpoint's Parquet."""
    path = str(tmp_path / "ckpt")
    spark.range(0, 1000, numPartitions=2).write.format("delta").option("delta.enableDeletionVectors", "true") \
        .save(path)
    deleted: set[int] = set()
    for i in range(11):  # 11 DELETE commits: the checkpoint at version 10 carries the vectors
        spark.sql(f"DELETE FROM delta.`{path}` WHERE id % 50 = {i}")
        deleted |= {n for n in range(1000) if n % 50 == i}
    assert os.path.exists(os.path.join(path, "_delta_log", f"{10:020d}.checkpoint.parquet"))
    snapshot = read_snapshot(path)
    assert snapshot.vectors  # the live files carry deletion vectors, read from the checkpoint and commit 11
    got = sorted(int(i) for b in DeltaLoader(DeltaDataset(path, batch_size=128)) for i in b["id"])
    assert got == sorted(set(range(1000)) - deleted)
