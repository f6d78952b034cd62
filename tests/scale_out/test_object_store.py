"""Delta tables on a real S3-compatible server (moto, credentials enforced): clear errors, nothing written on bad
input, and the single-writer rule enforced with the writer lease."""
import json
import os
import subprocess
import time

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from pipeline_opt.storage import (
    BucketNotFoundError,
    ConcurrentWriterError,
    CredentialsError,
    EndpointUnreachableError,
    ObjectStore,
    WriterLease,
    check_spark_write,
    explain,
    preflight,
    single_writer,
)
from tests.harness.driver_process import free_port
from tests.scale_out.conftest import BUCKET, bucket_keys

pytestmark = pytest.mark.cluster


def test_delta_rs_round_trip_with_the_stores_options(s3):
    uri = f"s3://{BUCKET}/roundtrip"
    preflight(uri, s3)
    write_deltalake(uri, pa.table({"a": [1, 2, 3]}), storage_options=s3.storage_options())
    assert DeltaTable(uri, storage_options=s3.storage_options()).to_pyarrow_table()["a"].to_pylist() == [1, 2, 3]


def _bad_inputs(s3):
    closed = ObjectStore(endpoint=f"http://127.0.0.1:{free_port()}", access_key_id="AK", secret_access_key="SK",
                         connect_timeout_s=1, attempts=1)
    return [
        ("unreachable endpoint", closed, f"s3://{BUCKET}/bad", EndpointUnreachableError, closed.endpoint),
        ("wrong credentials", s3.with_credentials(s3.access_key_id, "not-the-secret"), f"s3://{BUCKET}/bad",
         CredentialsError, s3.access_key_id),
        ("missing bucket", s3, "s3://no-such-bucket/bad", BucketNotFoundError, "no-such-bucket"),
    ]


@pytest.mark.parametrize("case", range(3), ids=["unreachable", "credentials", "bucket"])
def test_bad_input_gives_one_clear_error_and_writes_nothing(s3, case):
    name, store, uri, error, named = _bad_inputs(s3)[case]
    before = bucket_keys(s3)
    start = time.monotonic()
    with pytest.raises(error, match=named) as caught:
        preflight(uri, store)
    assert time.monotonic() - start < 10, f"{name}: preflight must fail fast"
    assert "not-the-secret" not in str(caught.value)
    # The same failure raised later by delta-rs maps to the same error.
    with pytest.raises(Exception) as raw:
        write_deltalake(uri, pa.table({"a": [1]}), storage_options=store.storage_options())
    assert type(explain(raw.value, uri, store)) is error
    assert bucket_keys(s3) == before


def test_a_second_writer_is_refused_while_the_lease_is_held(s3):
    uri = f"s3a://{BUCKET}/leased"
    with WriterLease(uri, s3, owner="nightly-compaction") as first:
        with pytest.raises(ConcurrentWriterError, match="nightly-compaction"):
            WriterLease(uri, s3, owner="adhoc").acquire()
        assert "leased/_pipeline_opt/writer.lease" in bucket_keys(s3)
        assert first.etag
    assert "leased/_pipeline_opt/writer.lease" not in bucket_keys(s3)
    with WriterLease(uri, s3, owner="adhoc"):  # free again after release
        pass


def test_every_entry_point_takes_the_lease_before_a_job_writes(spark, s3, monkeypatch, capsys):
    from pipeline_opt.app.cli import main
    from pipeline_opt.app.jobs import run_job

    for key, value in s3.to_env().items():
        monkeypatch.setenv(key, value)
    uri = f"s3a://{BUCKET}/held-elsewhere"
    with WriterLease(uri, s3, owner="nightly-compaction"):
        with pytest.raises(ConcurrentWriterError, match="nightly-compaction"):
            run_job("vacuum", {"path": uri, "execute": True}, spark=spark)
        assert main(["copy", f"s3a://{BUCKET}/elsewhere", uri]) == 2
    assert "nightly-compaction" in capsys.readouterr().err
    assert not [k for k in bucket_keys(s3) if k.startswith("held-elsewhere/_delta_log")]


def test_an_expired_lease_is_taken_over_atomically(s3):
    uri = f"s3://{BUCKET}/crashed"
    crashed = WriterLease(uri, s3, ttl_s=0.5, owner="crashed-job")
    crashed.acquire()
    crashed._stop.set()  # the holder dies without releasing: no heartbeat, no delete
    time.sleep(0.8)
    with WriterLease(uri, s3, owner="next-job") as lease:
        body = json.loads(s3.boto3_client().get_object(Bucket=BUCKET, Key="crashed/_pipeline_opt/writer.lease")
                          ["Body"].read())
        assert body["owner"] == "next-job" and lease.etag


def test_heartbeat_keeps_a_lease_alive_past_its_ttl(s3):
    uri = f"s3://{BUCKET}/long-job"
    with WriterLease(uri, s3, ttl_s=0.9, owner="long-job"):
        time.sleep(1.5)
        with pytest.raises(ConcurrentWriterError, match="long-job"):
            WriterLease(uri, s3, owner="other").acquire()


def test_spark_writes_to_s3_need_the_lease_unless_dynamodb_coordinates(spark, s3):
    uri = f"s3a://{BUCKET}/guarded"
    with pytest.raises(ConcurrentWriterError, match="refusing to write s3a://lake/guarded"):
        check_spark_write(spark, uri)
    with single_writer(uri, s3) as lease:
        assert lease is not None
        check_spark_write(spark, uri)
    check_spark_write(spark, "/local/path/needs/no/lease")
    with single_writer(uri, ObjectStore(commit_coordination="dynamodb")) as none:
        assert none is None


def test_the_cluster_driver_fails_before_spark_with_one_line_on_bad_credentials(s3):
    from tests.harness.driver_process import driver_args

    bad = s3.with_credentials(s3.access_key_id, "not-the-secret")
    before = bucket_keys(s3)
    steps = [{"op": "copy", "src": "unused", "dest": f"s3a://{BUCKET}/never-written"}]
    done = subprocess.run(driver_args("local[1]", steps), env={**os.environ, **bad.to_env()},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "rejected the credentials" in lines[0] and s3.access_key_id in lines[0]
    assert "not-the-secret" not in done.stderr
    assert bucket_keys(s3) == before


def test_health_on_s3_counts_the_deleted_rows_of_the_local_copy(spark, s3, tmp_path):
    from pipeline_opt.tables.health import table_health

    local = tmp_path / "dv"
    spark.range(0, 3000, numPartitions=3).selectExpr("id", "cast(id % 3 as int) as g").write.format("delta") \
        .option("delta.enableDeletionVectors", "true").partitionBy("g").save(str(local))
    spark.sql(f"DELETE FROM delta.`{local}` WHERE id % 7 = 0")
    client = s3.boto3_client()
    for f in local.rglob("*"):
        if f.is_file():
            client.upload_file(str(f), BUCKET, f"dv-copy/{f.relative_to(local)}")
    here = table_health(str(local))
    there = table_health(f"s3://{BUCKET}/dv-copy", storage_options=s3.storage_options())
    assert here.stats.deleted_rows == there.stats.deleted_rows == 3000 // 7 + 1
    assert [p.stats.deleted_rows for p in here.partitions] == [p.stats.deleted_rows for p in there.partitions]
