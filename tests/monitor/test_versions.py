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


def _history(store: ConfigStore) -> list[tuple[str, int]]:
    store.put("cache", {"policy": "lru"}, note="defaults")
    store.put("cache", {"policy": "s3fifo"}, note="fewer misses")
    store.revert("cache", "hit rate fell")
    return [(a.action, a.version) for a in store.log("cache")]


def test_the_store_works_under_a_file_uri(tmp_path):
    from pipeline_opt.monitor.rollouts import Settings

    uri = (tmp_path / "lake" / "_configs").as_uri()
    store = ConfigStore(uri)
    assert _history(store) == [("put", 1), ("put", 2), ("revert", 1)]
    assert store.get("cache").config == {"policy": "lru"} and store.names() == ["cache"]
    assert sorted(p.name for p in (tmp_path / "lake" / "_configs" / "cache").iterdir()) == [
        "HEAD", "log.jsonl", "v0001.json", "v0002.json"]  # the same layout as a folder, no temporary files left
    settings = Settings(uri)
    settings.start("cache.policy", "sieve", "ops", "try it")
    assert settings.rollout("cache.policy").status == "running" and Settings(str(tmp_path / "lake" / "_configs")
                                                                             ).rollout("cache.policy") is not None


@pytest.mark.cluster
def test_the_store_works_on_an_object_store(tmp_path):
    """On a real S3 API (moto's server, credentials enforced): versions, the log, HEAD and a rollout's state."""
    from pipeline_opt.monitor.rollouts import Settings
    from tests.harness.moto_server import MotoServer

    with MotoServer(tmp_path, buckets=("lake",)) as s3:
        options = s3.storage_options()
        store = ConfigStore("s3://lake/lakehouse/_configs", storage_options=options)
        assert _history(store) == [("put", 1), ("put", 2), ("revert", 1)]
        assert store.get("cache").config == {"policy": "lru"} and store.names() == ["cache"]
        keys = sorted(o["Key"] for o in s3.boto3_client().list_objects_v2(Bucket="lake")["Contents"])
        assert keys == [f"lakehouse/_configs/cache/{f}" for f in ("HEAD", "log.jsonl", "v0001.json", "v0002.json")]
        settings = Settings("s3://lake/lakehouse/_configs", storage_options=options)
        state = settings.start("compaction.target_file_size", "256MB", "ops", "larger files")
        assert settings.rollout(state.key).candidate_version == 2 and settings.value(state.key) is None
        with pytest.raises(Exception, match="already has rollout"):
            settings.start(state.key, "512MB", "ops", "a second one")
