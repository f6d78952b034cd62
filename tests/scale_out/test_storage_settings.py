"""One ObjectStore → Spark s3a confs and delta-rs/pyarrow options that agree; validation; jar versions; masters."""
import pytest

from pipeline_opt.errors import PipelineOptError
from pipeline_opt.spark import master_kind
from pipeline_opt.storage import ObjectStore, StorageError, bucket_and_key, for_engine
from pipeline_opt.storage.jars import hadoop_version, s3a_jar_confs, s3a_packages

H = "spark.hadoop.fs.s3a."


def test_one_store_gives_every_engine_the_same_endpoint_region_and_keys():
    store = ObjectStore(endpoint="http://127.0.0.1:9000", region="eu-west-1", access_key_id="AK",
                        secret_access_key="SK")
    confs, opts = store.spark_confs(), store.storage_options()
    assert confs[H + "endpoint"] == opts["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert confs[H + "endpoint.region"] == opts["AWS_REGION"] == "eu-west-1"
    assert (confs[H + "access.key"], confs[H + "secret.key"]) == (opts["AWS_ACCESS_KEY_ID"],
                                                                 opts["AWS_SECRET_ACCESS_KEY"])
    assert confs[H + "connection.ssl.enabled"] == "false" and opts["AWS_ALLOW_HTTP"] == "true"
    assert confs[H + "path.style.access"] == "true" and opts["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] == "false"
    assert "spark.delta.logStore.s3a.impl" not in confs  # single-writer: Delta's default S3SingleDriverLogStore
    fs = store.filesystem()
    assert fs.region == "eu-west-1"


def test_session_token_switches_the_credentials_provider_and_dynamodb_switches_the_logstore():
    store = ObjectStore(access_key_id="AK", secret_access_key="SK", session_token="T",
                        commit_coordination="dynamodb", dynamodb_table="commits")
    confs = store.spark_confs()
    assert confs[H + "aws.credentials.provider"].endswith("TemporaryAWSCredentialsProvider")
    assert confs[H + "session.token"] == store.storage_options()["AWS_SESSION_TOKEN"] == "T"
    assert confs["spark.delta.logStore.s3a.impl"] == "io.delta.storage.S3DynamoDBLogStore"
    assert confs["spark.io.delta.storage.S3DynamoDBLogStore.ddb.tableName"] == "commits"
    assert H + "endpoint" not in confs  # AWS itself


def test_from_env_reads_the_standard_aws_variables():
    env = {"AWS_ENDPOINT_URL": "https://minio.local:9000", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b",
           "AWS_DEFAULT_REGION": "us-west-2"}
    store = ObjectStore.from_env(env)
    assert (store.endpoint, store.region, store.access_key_id) == ("https://minio.local:9000", "us-west-2", "a")
    assert store.spark_confs()[H + "connection.ssl.enabled"] == "true"
    assert "b" not in str(store.redacted())


@pytest.mark.parametrize("kwargs, names", [
    ({"endpoint": "127.0.0.1:9000"}, "127.0.0.1:9000"),
    ({"endpoint": "ftp://host"}, "ftp://host"),
    ({"access_key_id": "AK"}, "AK"),
    ({"commit_coordination": "optimistic"}, "optimistic"),
    ({"attempts": 0}, "0"),
])
def test_bad_settings_raise_one_error_naming_the_value(kwargs, names):
    with pytest.raises(StorageError, match=names):
        ObjectStore(**kwargs)


def test_uris_are_translated_per_engine_and_checked():
    assert for_engine("s3://b/t", "spark") == "s3a://b/t"
    assert for_engine("s3a://b/t", "delta-rs") == "s3://b/t"
    assert for_engine("/tmp/t", "spark") == "/tmp/t"
    assert bucket_and_key("s3a://b/x/y/") == ("b", "x/y")
    with pytest.raises(StorageError, match="gs://b/t"):
        bucket_and_key("gs://b/t")


def test_hadoop_aws_matches_the_hadoop_inside_pyspark():
    version = hadoop_version()
    assert version.count(".") == 2
    assert s3a_packages() == [f"org.apache.hadoop:hadoop-aws:{version}"]
    packages = s3a_jar_confs(local_classpath=False)["spark.jars.packages"]
    assert "io.delta:delta-spark" in packages and f"hadoop-aws:{version}" in packages


@pytest.mark.parametrize("url, kind", [("local[2]", "local"), ("spark://10.0.0.1:7077", "standalone"),
                                       ("yarn", "yarn"), ("k8s://https://api:6443", "kubernetes")])
def test_master_kinds(url, kind):
    assert master_kind(url) == kind


def test_unknown_master_is_refused():
    with pytest.raises(PipelineOptError, match="mesos://x"):
        master_kind("mesos://x")



@pytest.mark.parametrize("argv, named", [(["--steps", "[{op"], "not JSON"),
                                         (["--steps", '[{"path": "t"}]'], "'op' key"),
                                         (["--steps", '[{"op": "explode"}]'], "explode"),
                                         (["--steps", "[]", "--conf", "spark.x"], "spark.x")])
def test_driver_bad_arguments_give_one_line_and_exit_2(argv, named, capsys):
    from pipeline_opt.app.driver import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0]
