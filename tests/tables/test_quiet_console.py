"""A verified rewrite prints nothing of great-expectations' own (its tqdm bars) on the console."""
from pipeline_opt.tables.verify import read_version, verify_rewrite


def test_verification_draws_no_progress_bars(spark, tmp_path, capfd):
    path = str(tmp_path / "t")
    spark.range(50).repartition(3).write.format("delta").save(path)
    read_version(spark, path).coalesce(1).write.format("delta").mode("overwrite").save(path)
    capfd.readouterr()
    result = verify_rewrite(spark, path, 0, 1)
    out, err = capfd.readouterr()
    assert result.ok and result.engine == "great_expectations"
    assert "Calculating Metrics" not in err + out and "it/s" not in err
