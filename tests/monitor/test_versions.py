from __future__ import annotations

import pytest

from pipeline_opt.monitor.versions import ConfigStore, ConfigStoreError


def test_put_revert_and_reactivate_keep_every_version(tmp_path):
    store = ConfigStore(tmp_path)
    v1 = store.put("compaction", {"min_file_size": "16MB"}, note="defaults")
    v2 = store.put("compaction", {"min_file_size": "64MB"}, note="bigger files")
    assert (v1.parent, v2.parent) == (None, 1) and store.get("compaction").version == 2
    event = store.revert("compaction", "latency regression")
    assert (event.previous, event.version, event.action) == (2, 1, "revert")
    assert store.get("compaction").config == {"min_file_size": "16MB"}
    assert store.versions("compaction") == [1, 2]  # nothing deleted
    v3 = store.put("compaction", {"min_file_size": "32MB"})
    assert v3.parent == 1  # a new version descends from the active one
    store.activate("compaction", 2, "retry")
    assert [(a.action, a.version) for a in store.log("compaction")] == [
        ("put", 1), ("put", 2), ("revert", 1), ("put", 3), ("activate", 2)]
    assert store.log("compaction")[2].reason == "latency regression"


def test_candidate_can_be_stored_without_activating(tmp_path):
    store = ConfigStore(tmp_path)
    store.put("cache", {"policy": "lru"})
    cand = store.put("cache", {"policy": "s3fifo"}, activate=False)
    assert store.head("cache") == 1 and store.get("cache", cand.version).config == {"policy": "s3fifo"}


def test_errors_name_the_offending_value(tmp_path):
    store = ConfigStore(tmp_path)
    with pytest.raises(ConfigStoreError, match="no version"):
        store.get("cache")
    store.put("cache", {"policy": "lru"})
    with pytest.raises(ConfigStoreError, match="no previous version"):
        store.revert("cache", "why")
    with pytest.raises(ConfigStoreError, match="version 7"):
        store.activate("cache", 7, "why")
    with pytest.raises(ConfigStoreError, match="'../x'"):
        store.put("../x", {})
