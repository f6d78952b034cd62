"""Both Spark lines: Delta's jar coordinates follow the installed pyspark and delta-spark, and the running session
really is the line this venv installs (``make test``: Spark 4.2 + Delta 4.4; ``make test-spark35``: 3.5 + 3.2)."""
from __future__ import annotations

from importlib.metadata import version

import pytest

from pipeline_opt.spark import delta_artifacts, ivy_home


@pytest.mark.parametrize("spark_version, delta, scala, artifact", [
    ("3.5.0", "3.2.0", "2.12", "io.delta:delta-spark_2.12:3.2.0"),
    ("3.5.7", "3.3.2", "2.12", "io.delta:delta-spark_2.12:3.3.2"),
    ("4.0.1", "4.0.0", "2.13", "io.delta:delta-spark_2.13:4.0.0"),
    ("4.2.0", "4.4.0", "2.13", "io.delta:delta-spark_4.2_2.13:4.4.0"),
])
def test_delta_coordinates_per_line(spark_version, delta, scala, artifact):
    assert delta_artifacts(spark_version, delta, scala) == [artifact, f"io.delta:delta-storage:{delta}"]


def test_the_session_runs_the_installed_line(spark, tmp_path):
    assert spark.version == version("pyspark")
    main, storage = delta_artifacts()
    assert main.endswith(":" + version("delta-spark")) and ("_2.12:" in main) == spark.version.startswith("3.")
    assert ivy_home().name == (".ivy2" if spark.version.startswith("3.") else ".ivy2.5.2")
    path = str(tmp_path / "t")
    spark.range(3).write.format("delta").save(path)
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id = 1")
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()
    assert sorted(r.operation for r in history) == ["DELETE", "WRITE"]
    assert sorted(r.id for r in spark.sql(f"SELECT id FROM delta.`{path}` VERSION AS OF 0").collect()) == [0, 1, 2]
