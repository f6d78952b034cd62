"""Health, compaction (verified), VACUUM and an s3a write on a real 2-worker standalone cluster: the same library
calls as a local run, only the master URL differs, and the results equal the local-mode results on the same table."""
import pytest

from pipeline_opt.tables.health import table_health
from tests.scale_out.conftest import S3_TABLE, VACUUM, WINDOW

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture(scope="module")
def on_local(cluster_run, spark, small_table, tmp_path_factory):
    """The same calls in local mode (the suite's session) on an identical copy, while the cluster run is in
    flight."""
    import shutil

    from pipeline_opt.tables.compact import compact_table
    from pipeline_opt.tables.options import CompactOptions
    from pipeline_opt.tables.settings import Window
    from pipeline_opt.tables.vacuum import vacuum
    from pipeline_opt.tables.verify import fingerprint

    path = str(tmp_path_factory.mktemp("local-run") / "events")
    shutil.copytree(small_table, path)
    before = table_health(path)
    window = Window(WINDOW["min_file_size"], WINDOW["max_file_size"])
    compacted = compact_table(spark, path, CompactOptions(window=window)).summary()
    vacuumed = vacuum(spark, path, **VACUUM, dry_run=False)
    return {"health": before, "compact": compacted, "vacuum": vacuumed, "health_after": table_health(path),
            "fingerprint": fingerprint(spark, path)}


def test_the_driver_ran_on_both_workers(cluster_run, on_local, cluster):
    assert cluster_run["executors"] == {"executors": 2, "master": cluster.master_url}


def test_health_equals_local(cluster_run, on_local):
    assert cluster_run["health"]["stats"] == vars(on_local["health"].stats)
    assert cluster_run["health"]["stats"]["files"] == 36


def test_verified_compaction_equals_local(cluster_run, on_local):
    keys = ["target", "planned_files", "planned_bytes", "files_removed", "files_added", "bytes_rewritten",
            "rows_before", "rows_after", "partitions_touched", "verified"]
    cluster_facts = {k: cluster_run["compact"][k] for k in keys}
    assert cluster_facts == {k: on_local["compact"][k] for k in keys}
    assert cluster_facts["verified"] is True and cluster_facts["files_removed"] == 36
    assert cluster_facts["files_added"] == 3  # one file per partition
    after = cluster_run["health_after"]["stats"]
    local_after = on_local["health_after"].stats
    assert (after["files"], after["rows"]) == (local_after.files, local_after.rows) == (3, 2400)


def test_vacuum_equals_local(cluster_run, on_local):
    local = on_local["vacuum"]
    assert (cluster_run["vacuum"]["files"], cluster_run["vacuum"]["bytes"]) == (local.files, local.bytes)
    assert local.files == 36  # the compacted-away small files, nothing the current version needs


def test_contents_after_compaction_and_vacuum_equal_local(cluster_run, on_local):
    local = on_local["fingerprint"]
    got = cluster_run["fingerprint"]
    assert (got["rows"], got["row_checksum"]) == (local.rows, local.row_checksum)
    assert got["columns"] == [vars(c) for c in local.columns]


def test_spark_wrote_the_table_to_s3_through_s3a_and_delta_rs_reads_it(cluster_run, on_local, s3):
    local = on_local["fingerprint"]
    assert cluster_run["copy"]["rows"] == 2400
    assert (cluster_run["s3_fingerprint"]["rows"], cluster_run["s3_fingerprint"]["row_checksum"]) == \
        (local.rows, local.row_checksum)
    remote = table_health(S3_TABLE.replace("s3a://", "s3://"), storage_options=s3.storage_options())
    assert remote.stats.rows == 2400 and remote.partition_columns == ["part"]
