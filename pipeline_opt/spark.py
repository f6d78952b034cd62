"""The one place a SparkSession is built.

Invariants: on Databricks the existing session is returned untouched; under ``spark-submit`` the session uses the
JVM and conf that spark-submit started (its ``--master``, ``--packages``, ``--conf`` win); elsewhere a local (or
``master``) session
with Delta Lake, quiet logs and no UI. Delta's JVM jars come from Maven Central through Spark's Ivy resolver and
are cached under ``~/.ivy2``; when Ivy cannot fetch them, Maven copies them into ``jar_dir()`` and Spark loads them
from there (``spark.jars``), so a machine without Ivy access still works.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional

from pipeline_opt.errors import PipelineOptError, require

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DELTA_CONFS = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
# Sized for a 2-core laptop/CI box; a cluster master URL or conf overrides them.
LOCAL_CONFS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.driver.memory": "4g",
    "spark.sql.session.timeZone": "UTC",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "4",
}


MASTER_ENV = "PIPELINE_OPT_SPARK_MASTER"


def is_databricks() -> bool:
    """True inside a Databricks runtime (notebook, job or Databricks Connect-less cluster)."""
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def launched_by_spark_submit() -> bool:
    """True when spark-submit started the JVM before this Python driver (it passes the gateway port)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def master_kind(master: Optional[str]) -> str:
    """``local``, ``standalone``, ``yarn``, ``kubernetes`` or ``databricks`` for a master URL (None: env/local).

    A job changes nothing but its master URL to move between them; on Databricks the runtime's session decides.
    """
    if is_databricks():
        return "databricks"
    master = master or os.environ.get(MASTER_ENV, "local[2]")
    for prefix, kind in (("local", "local"), ("spark://", "standalone"), ("yarn", "yarn"), ("k8s://", "kubernetes")):
        if master.startswith(prefix):
            return kind
    raise PipelineOptError(f"master URL {master!r} is not local[N], spark://HOST:PORT, yarn or k8s://HOST:PORT")


def cluster_confs(executor_memory: str = "768m", executor_cores: int = 1, max_cores: Optional[int] = None,
                  driver_host: Optional[str] = None, python: Optional[str] = None) -> dict[str, str]:
    """Confs for running on a cluster: executor size, the Python executors start (same as the driver's by
    default), and the address executors use to reach the driver. They say where things run, never what a job
    computes."""
    confs = {"spark.executor.memory": executor_memory, "spark.executor.cores": str(executor_cores),
             "spark.pyspark.python": python or sys.executable, "spark.pyspark.driver.python": sys.executable}
    if max_cores:
        confs["spark.cores.max"] = str(max_cores)
    if driver_host:
        confs["spark.driver.host"] = driver_host
        confs["spark.driver.bindAddress"] = driver_host
    return confs


def delta_artifacts() -> list[str]:
    """Maven coordinates of the Delta jars matching the installed pyspark and delta-spark."""
    from importlib.metadata import version

    spark_minor = ".".join(version("pyspark").split(".")[:2])
    delta = version("delta-spark")
    return [f"io.delta:delta-spark_{spark_minor}_2.13:{delta}", f"io.delta:delta-storage:{delta}"]


def jar_dir() -> Path:
    """Folder of the Maven fallback jars (``PIPELINE_OPT_JAR_DIR`` or ``~/.cache/pipeline_opt/jars``)."""
    default = Path.home() / ".cache" / "pipeline_opt" / "jars"
    return Path(os.environ.get("PIPELINE_OPT_JAR_DIR", default))


def fetch_jars_with_maven(dest: Optional[Path] = None) -> list[Path]:
    """Copy the Delta jars from Maven Central into ``dest`` with ``mvn dependency:copy``; returns their paths."""
    dest = dest or jar_dir()
    dest.mkdir(parents=True, exist_ok=True)
    for coord in delta_artifacts():
        cmd = ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={coord}", f"-DoutputDirectory={dest}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise PipelineOptError(f"could not fetch {coord} with Maven: {done.stdout[-300:]}{done.stderr[-300:]}")
    return sorted(dest.glob("*.jar"))


def _local_jars() -> list[Path]:
    names = [c.split(":")[1] for c in delta_artifacts()]
    jars = sorted(jar_dir().glob("*.jar"))
    return jars if all(any(j.name.startswith(n + "-") for j in jars) for n in names) else []


def get_spark(
    app_name: str = "pipeline_opt",
    master: Optional[str] = None,
    conf: Optional[Mapping[str, str]] = None,
) -> "SparkSession":
    """Return the active session: Databricks' own, or a Delta-enabled one built for this machine.

    ``master`` defaults to ``PIPELINE_OPT_SPARK_MASTER`` or ``local[2]``; ``conf`` entries win over the defaults.
    """
    sql = require("pyspark.sql", "spark")
    if is_databricks():
        return sql.SparkSession.builder.getOrCreate()
    active = sql.SparkSession.getActiveSession()
    if active is not None:
        return active
    if launched_by_spark_submit():
        builder = sql.SparkSession.builder.appName(app_name)
        for key, value in (conf or {}).items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        return spark
    try:
        return _build(sql.SparkSession, app_name, master, conf, use_ivy=not _local_jars())
    except Exception as e:  # Ivy could not resolve: fall back to Maven-copied jars once
        if _local_jars() or "resolve" not in str(e).lower():
            raise
        fetch_jars_with_maven()
        return _build(sql.SparkSession, app_name, master, conf, use_ivy=False)


def _build(session_cls, app_name, master, conf, use_ivy: bool):
    log4j = Path(__file__).with_name("log4j2.properties")
    builder = session_cls.builder.appName(app_name).master(
        master or os.environ.get(MASTER_ENV, "local[2]")
    )
    java_opts = f"-Dlog4j2.configurationFile=file:{log4j}"
    settings = {**LOCAL_CONFS, **DELTA_CONFS, "spark.driver.extraJavaOptions": java_opts,
                "spark.executor.extraJavaOptions": java_opts}
    if use_ivy:
        settings["spark.jars.packages"] = ",".join(delta_artifacts())
    else:
        settings["spark.jars"] = ",".join(str(j) for j in _local_jars())
    settings.update(conf or {})
    # Python workers on executors (UDFs, TorchDistributor tasks) start PYSPARK_PYTHON, which the builder conf alone
    # does not set for them: by default they run this interpreter, which has numpy, torch and pipeline_opt.
    os.environ.setdefault("PYSPARK_PYTHON", settings.get("spark.pyspark.python", sys.executable))
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
