"""Pluggable filesystems and the local file cache: exact rows, bytes fetched counted, disk kept under budget."""
from __future__ import annotations

import fsspec
import pytest

from pipeline_opt.errors import ConfigError
from pipeline_opt.loader import DeltaDataset, DeltaLoader, FileCache
from tests.loader.util import ids_of


def _table_bytes(ds) -> int:
    return sum(f.size for f in ds.snapshot.files)


def _epoch(ds, workers=0):
    loader = DeltaLoader(ds, num_workers=workers)
    return ids_of(list(loader)), loader.io_stats()


def test_fsspec_filesystem_counts_bytes(dv_table):
    path, expected = dv_table
    ds = DeltaDataset(path, filesystem=fsspec.filesystem("file"), batch_size=100)
    ids, stats = _epoch(ds, workers=2)
    assert sorted(ids) == sorted(expected)
    assert stats["files_opened"] == len(ds.snapshot.files)
    assert 0 < stats["bytes_fetched"] <= 2 * _table_bytes(ds)


def test_cache_under_budget_evicts(dv_table, tmp_path):
    path, expected = dv_table
    probe = DeltaDataset(path)
    budget = _table_bytes(probe) // 3
    cache = FileCache(tmp_path / "cache", budget, policy="lru")
    ds = DeltaDataset(path, filesystem=fsspec.filesystem("file"), file_cache=cache, batch_size=100, shuffle=True)
    for _ in range(2):
        ids, stats = _epoch(ds, workers=2)
        assert sorted(ids) == sorted(expected)
        assert cache.disk_bytes() <= budget
    assert stats["cache_misses"] > 0 and stats["bytes_fetched"] > 0


def test_cache_hits_when_table_fits(dv_table, tmp_path):
    path, expected = dv_table
    cache = FileCache(tmp_path / "cache", "10MB", policy="lru")
    ds = DeltaDataset(path, filesystem=fsspec.filesystem("file"), file_cache=cache, batch_size=100)
    _, first = _epoch(ds)
    ids, second = _epoch(ds, workers=2)
    assert sorted(ids) == sorted(expected)
    assert first["cache_misses"] == len(ds.snapshot.files)
    assert second["cache_hits"] == len(ds.snapshot.files)
    # only deletion-vector files are fetched again (once per worker process); data files all come from the cache
    dv_bytes = sum(p.stat().st_size for p in path.glob("deletion_vector_*.bin"))
    assert second["bytes_fetched"] <= 2 * dv_bytes < first["bytes_fetched"] / 5


@pytest.mark.parametrize("capacity", [0, "lots"])
def test_bad_capacity(tmp_path, capacity):
    with pytest.raises(ConfigError):
        FileCache(tmp_path, capacity)


# -- shared JSON state, plans, budgets (tables written with deltalake: many small files, no Spark needed) ---------

def _many_files_table(root, files=30, seed=0):
    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    rng = np.random.default_rng(seed)
    for _ in range(files):
        n = int(rng.integers(1500, 3000))
        write_deltalake(str(root), pa.table({"id": rng.integers(0, 10**9, n), "x": rng.random(n)}), mode="append")
    return root


@pytest.fixture(scope="module")
def many_files(tmp_path_factory):
    return _many_files_table(tmp_path_factory.mktemp("many") / "t")


def _cached_epochs(table, cache, epochs=3, workers=0, seed=3):
    ds = DeltaDataset(str(table), filesystem=fsspec.filesystem("file"), file_cache=cache, batch_size=500,
                      shuffle=True, seed=seed, shuffle_buffer=2000)
    loader = DeltaLoader(ds, num_workers=workers)
    fetched = []
    for _ in range(epochs):
        rows = sum(len(b["id"]) for b in loader)
        assert rows == sum(ds.live_rows)
        assert cache.disk_bytes() <= cache.capacity_bytes
        fetched.append(loader.io_stats()["bytes_fetched"])
    return fetched


def test_state_is_json_not_pickle(many_files, tmp_path):
    import json

    cache = FileCache(tmp_path / "c", _table_bytes(DeltaDataset(str(many_files))) // 2, policy="s3fifo")
    _cached_epochs(many_files, cache, epochs=1)
    state = json.loads((tmp_path / "c" / ".state.json").read_text())
    assert state["format"] == "pipeline-opt-shared-cache" and state["policy"] == "s3fifo"
    assert not list((tmp_path / "c").glob("*.pkl"))


def test_plans_from_the_loader_cut_bytes_fetched(many_files, tmp_path):
    budget = _table_bytes(DeltaDataset(str(many_files))) // 2
    lru = _cached_epochs(many_files, FileCache(tmp_path / "lru", budget, policy="lru"))
    planned = _cached_epochs(many_files, FileCache(tmp_path / "planned", budget, policy="planned"))
    assert planned[0] == lru[0]  # the cold epoch fetches everything either way
    assert sum(planned[1:]) < 0.8 * sum(lru[1:])


def test_workers_share_one_policy_and_budget(many_files, tmp_path):
    budget = _table_bytes(DeltaDataset(str(many_files))) // 2
    fetched = _cached_epochs(many_files, FileCache(tmp_path / "c", budget, policy="planned"), workers=2)
    assert fetched[1] < fetched[0]
    journal = next((tmp_path / "c").glob(".journal-*.jsonl")).read_text().splitlines()
    assert any(line.startswith('["a"') and "worker0/2" in line for line in journal)
    assert any(line.startswith('["a"') and "worker1/2" in line for line in journal)


def test_crafted_state_is_refused_and_rebuilt_from_the_folder(many_files, tmp_path, caplog):
    import json

    budget = _table_bytes(DeltaDataset(str(many_files))) // 2
    folder = tmp_path / "c"
    _cached_epochs(many_files, FileCache(folder, budget, policy="lru"), epochs=1)
    kept = sorted(p.name for p in folder.glob("*.parquet"))
    marker = tmp_path / "owned"
    evil = {"format": "pipeline-opt-shared-cache", "version": 1, "policy": "lru", "options": {},
            "capacity_bytes": budget, "journal": "0" * 32,
            "state": {"$o": 0, "cls": "subprocess:Popen", "v": {"args": ["touch", str(marker)]}}}
    (folder / ".state.json").write_text(json.dumps(evil))
    caplog.set_level("WARNING")
    cache = FileCache(folder, budget, policy="lru")
    with cache.shared.session() as s:  # the files already there are adopted, under the budget
        assert kept and all(name[:-len(".parquet")] in s for name in kept)
    assert not marker.exists()
    refusals = [r for r in caplog.records if "not trusted" in r.message]
    assert len(refusals) == 1 and "\n" not in refusals[0].getMessage()
    assert "rebuilt from the" in refusals[0].getMessage()
    _cached_epochs(many_files, cache, epochs=1)  # and the cache works on


def test_a_journal_line_naming_a_path_is_refused(many_files, tmp_path, caplog):
    budget = _table_bytes(DeltaDataset(str(many_files))) // 2
    folder = tmp_path / "c"
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    _cached_epochs(many_files, FileCache(folder, budget, policy="lru"), epochs=1)
    journal = next(folder.glob(".journal-*.jsonl"))
    with journal.open("a") as f:
        f.write(f'["r", "../../{victim.name[:-4]}", 10, null]\n')
    caplog.set_level("WARNING")
    _cached_epochs(many_files, FileCache(folder, budget, policy="lru"), epochs=1)
    assert victim.read_text() == "keep me"
    assert sum("not trusted" in r.message for r in caplog.records) == 1


def test_budget_below_the_largest_file_is_refused(many_files, tmp_path):
    from pipeline_opt.loader.file_cache import FileCacheBudgetError

    largest = max(f.size for f in DeltaDataset(str(many_files)).snapshot.files)
    with pytest.raises(FileCacheBudgetError, match="smaller than the largest file") as e:
        DeltaDataset(str(many_files), file_cache=FileCache(tmp_path / "c", largest - 1, policy="planned"))
    assert "\n" not in str(e.value)


def test_unknown_files_in_a_plan_are_ignored_with_a_warning(many_files, tmp_path, caplog):
    ds = DeltaDataset(str(many_files))
    uris = [ds.snapshot.file_uri(f) for f in ds.snapshot.files]
    cache = FileCache(tmp_path / "c", "100MB", policy="planned")
    caplog.set_level("WARNING")
    kept = cache.announce("nightly", [uris[0], "file:///gone/part-0.parquet", uris[1]], known=set(uris))
    assert kept == 2
    assert len(caplog.records) == 1 and "not in the snapshot" in caplog.records[0].message
    assert FileCache(tmp_path / "d", "100MB", policy="lru").announce("x", uris) == 0  # plans cost nothing here


def test_policies_that_cannot_be_shared_are_refused(tmp_path):
    pytest.importorskip("torch")
    with pytest.raises(ConfigError, match="cannot be shared"):
        FileCache(tmp_path, "1MB", policy="lstm")
    with pytest.raises(ConfigError, match="need the planned policy"):
        FileCache(tmp_path, "1MB", policy="lru", pins=["lineitem"])


@pytest.mark.parametrize("damage", ["truncated", "pickle", "other_budget"])
def test_a_corrupt_state_is_rebuilt_from_the_folder(many_files, tmp_path, caplog, damage):
    import json
    import pickle

    total = _table_bytes(DeltaDataset(str(many_files)))
    budget = total // 2
    folder = tmp_path / "c"
    _cached_epochs(many_files, FileCache(folder, budget, policy="planned"), epochs=1)
    state = folder / ".state.json"
    kept = sorted(p.stem for p in folder.glob("*.parquet"))
    if damage == "truncated":
        state.write_text(state.read_text()[: len(state.read_text()) // 2])
    elif damage == "pickle":
        state.write_bytes(pickle.dumps({"format": "pipeline-opt-shared-cache"}))
    else:  # sound state, but of another budget than the one the cache is opened with now: not reused
        assert json.loads(state.read_text())["format"] == "pipeline-opt-shared-cache"
        budget = total * 3 // 4
    caplog.set_level("WARNING")
    cache = FileCache(folder, budget, policy="planned")
    with cache.shared.session() as s:
        assert kept and all(k in s for k in kept)  # the cached files are adopted, not thrown away
        assert s.policy is not None and s.policy.used_bytes <= budget
    refusals = [r.getMessage() for r in caplog.records if "not trusted" in r.getMessage()]
    assert len(refusals) == 1 and "rebuilt from the" in refusals[0] and "\n" not in refusals[0]
    fetched = _cached_epochs(many_files, cache, epochs=1)  # rows exact, disk under budget (checked inside)
    assert fetched[0] < total  # the adopted files were served from the cache
