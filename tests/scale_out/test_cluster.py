"""Health, compaction (verified), VACUUM and an s3a write on a real 2-worker standalone cluster: the same library
calls as a local run, only the master URL differs, and the results equal the local-mode results on the same table."""
import json
import sys

import pytest

from pipeline_opt.cluster import cluster_confs, run_json
from pipeline_opt.tables.health import table_health
from tests.scale_out.conftest import BUCKET

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

WINDOW = {"min_file_size": 100_000, "max_file_size": 1_000_000}
VACUUM = {"retention_hours": 0, "allow_unsafe": True, "dry_run": False}
S3_TABLE = f"s3a://{BUCKET}/events-from-cluster"


def _steps(path: str) -> list[dict]:
    return [{"op": "executors"},
            {"op": "health", "path": path},
            {"op": "compact", "path": path, **WINDOW},
            {"op": "vacuum", "path": path, **VACUUM},
            {"op": "health", "path": path},
            {"op": "fingerprint", "path": path},
            {"op": "copy", "src": path, "dest": S3_TABLE, "partition_by": ["part"]},
            {"op": "fingerprint", "path": S3_TABLE}]


@pytest.fixture(scope="module")
def on_cluster(cluster, s3, small_table, tmp_path_factory):
    """Facts of every step, from one driver application on the cluster."""
    import shutil

    path = tmp_path_factory.mktemp("cluster-run") / "events"
    shutil.copytree(small_table, path)
    confs = cluster_confs(executor_memory="768m", driver_host="127.0.0.1")
    env = {"AWS_ENDPOINT_URL": s3.endpoint, "AWS_ACCESS_KEY_ID": s3.access_key_id,
           "AWS_SECRET_ACCESS_KEY": s3.secret_access_key, "AWS_REGION": s3.region}
    result = run_json([sys.executable, "-m", "pipeline_opt.cluster.driver", "--master", cluster.master_url,
                       "--steps", json.dumps(_steps(str(path))), *[f"--conf={k}={v}" for k, v in confs.items()]],
                      env=env, timeout_s=840)
    names = ["executors", "health", "compact", "vacuum", "health_after", "fingerprint", "copy", "s3_fingerprint"]
    return dict(zip(names, result["steps"]))


@pytest.fixture(scope="module")
def on_local(spark, small_table, tmp_path_factory):
    """The same calls in local mode (the suite's session) on an identical copy."""
    import shutil

    from pipeline_opt.tables.compact import CompactOptions, compact_table
    from pipeline_opt.tables.plan import Window
    from pipeline_opt.tables.vacuum import vacuum
    from pipeline_opt.tables.verify import fingerprint

    path = str(tmp_path_factory.mktemp("local-run") / "events")
    shutil.copytree(small_table, path)
    before = table_health(path)
    window = Window(WINDOW["min_file_size"], WINDOW["max_file_size"])
    compacted = compact_table(spark, path, CompactOptions(window=window)).summary()
    vacuumed = vacuum(spark, path, **VACUUM)
    return {"health": before, "compact": compacted, "vacuum": vacuumed, "health_after": table_health(path),
            "fingerprint": fingerprint(spark, path)}


def test_the_driver_ran_on_both_workers(on_cluster, cluster):
    assert on_cluster["executors"] == {"executors": 2, "master": cluster.master_url}


def test_health_equals_local(on_cluster, on_local):
    assert on_cluster["health"]["stats"] == vars(on_local["health"].stats)
    assert on_cluster["health"]["stats"]["files"] == 36


def test_verified_compaction_equals_local(on_cluster, on_local):
    keys = ["target", "planned_files", "planned_bytes", "files_removed", "files_added", "bytes_rewritten",
            "rows_before", "rows_after", "partitions_touched", "verified"]
    cluster_facts = {k: on_cluster["compact"][k] for k in keys}
    assert cluster_facts == {k: on_local["compact"][k] for k in keys}
    assert cluster_facts["verified"] is True and cluster_facts["files_removed"] == 36
    assert cluster_facts["files_added"] == 3  # one file per partition
    after = on_cluster["health_after"]["stats"]
    local_after = on_local["health_after"].stats
    assert (after["files"], after["rows"]) == (local_after.files, local_after.rows) == (3, 2400)


def test_vacuum_equals_local(on_cluster, on_local):
    local = on_local["vacuum"]
    assert (on_cluster["vacuum"]["files"], on_cluster["vacuum"]["bytes"]) == (local.files, local.bytes)
    assert local.files == 36  # the compacted-away small files, nothing the current version needs


def test_contents_after_compaction_and_vacuum_equal_local(on_cluster, on_local):
    local = on_local["fingerprint"]
    got = on_cluster["fingerprint"]
    assert (got["rows"], got["row_checksum"]) == (local.rows, local.row_checksum)
    assert got["columns"] == [vars(c) for c in local.columns]


def test_spark_wrote_the_table_to_s3_through_s3a_and_delta_rs_reads_it(on_cluster, on_local, s3):
    local = on_local["fingerprint"]
    assert on_cluster["copy"] == {"rows": 2400}
    assert (on_cluster["s3_fingerprint"]["rows"], on_cluster["s3_fingerprint"]["row_checksum"]) == \
        (local.rows, local.row_checksum)
    remote = table_health(S3_TABLE.replace("s3a://", "s3://"), storage_options=s3.storage_options())
    assert remote.stats.rows == 2400 and remote.partition_columns == ["part"]
