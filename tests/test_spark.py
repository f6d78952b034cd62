"""The session really writes and reads Delta: a log exists, time travel works, the session is the shared one."""
from chispa import assert_df_equality

from pipeline_opt.spark import DELTA_CONFS, get_spark


def test_delta_round_trip_and_time_travel(spark, tmp_path):
    path = str(tmp_path / "t")
    spark.range(5).write.format("delta").save(path)
    spark.range(5, 8).write.format("delta").mode("append").save(path)
    assert (tmp_path / "t" / "_delta_log" / "00000000000000000001.json").is_file()
    assert spark.read.format("delta").load(path).count() == 8
    v0 = spark.read.format("delta").option("versionAsOf", 0).load(path)
    assert_df_equality(v0, spark.range(5), ignore_row_order=True, ignore_nullable=True)
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()
    assert [r.operation for r in sorted(history, key=lambda r: r.version)] == ["WRITE", "WRITE"]


def test_session_is_configured_for_delta_and_quiet(spark):
    for key, value in DELTA_CONFS.items():
        assert spark.conf.get(key) == value
    assert spark.conf.get("spark.ui.showConsoleProgress") == "false"
    assert get_spark() is spark  # one session per process


def test_databricks_returns_existing_session_untouched(spark, monkeypatch):
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "15.4")
    spark.conf.set("pipeline_opt.marker", "kept")
    assert get_spark(conf={"pipeline_opt.marker": "changed"}) is spark
    assert spark.conf.get("pipeline_opt.marker") == "kept"


def test_jars_of_a_session_are_remembered_so_later_starts_skip_ivy(spark, tmp_path, monkeypatch):
    from pathlib import Path

    from pipeline_opt.spark import _local_jars, _remember_resolution

    monkeypatch.setenv("PIPELINE_OPT_JAR_DIR", str(tmp_path))
    assert _local_jars() == []  # nothing copied or remembered in an empty folder
    _remember_resolution(spark)
    jars = _local_jars()
    assert any("delta-spark" in j.name for j in jars) and all(j.is_file() for j in jars)
    listed = next(tmp_path.glob("ivy-resolved-*.txt"))
    listed.write_text(listed.read_text() + str(tmp_path / "gone.jar") + "\n")
    assert _local_jars() == []  # a jar that vanished since: resolve again rather than start without it
    assert Path(listed).is_file()
