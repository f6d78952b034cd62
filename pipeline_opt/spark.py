"""The one place a SparkSession is built.

Invariants: on Databricks the runtime's own session is returned untouched (classic or Spark Connect, as the compute
gives it), with a warning naming a runtime outside the tested set (``TESTED_RUNTIMES``, the constraint files of
``conf/runtimes``); with a Spark Connect URL (``SPARK_REMOTE``, or ``spark.remote`` in ``conf``) a Connect session
to it, after a reachability check that fails in one line naming the URL; under ``spark-submit`` the session uses the
JVM and conf that spark-submit started (its ``--master``, ``--packages``, ``--conf`` win); elsewhere a local (or
``master``) session with Delta Lake, quiet logs and no UI — with a persistent local Hive metastore under
``PIPELINE_OPT_METASTORE`` when set, so catalog table names outlive the process. Delta's JVM jars match the
installed pyspark and delta-spark (``delta_artifacts``: Scala 2.12 jars for Spark 3.5, 2.13 for Spark 4) and come
from Maven Central through Spark's Ivy resolver (cached under ``~/.ivy2`` for Spark 3, ``~/.ivy2.5.2`` for Spark 4);
when Ivy cannot fetch them, Maven copies them into ``jar_dir()`` and Spark loads them from there (``spark.jars``).
Library code never touches ``sparkContext`` or JVM handles, so every session kind runs every operation.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping, Optional, Sequence

from pipeline_opt.errors import PipelineOptError, require
from pipeline_opt.scratch import scratch_dir

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
REMOTE_ENV = "SPARK_REMOTE"  # pyspark's own variable for a Spark Connect URL
METASTORE_ENV = "PIPELINE_OPT_METASTORE"
# Databricks runtimes whose pinned libraries and Spark/Delta line the tests cover (conf/runtimes/*.txt), by the
# cluster ``spark_version`` prefix; DATABRICKS_RUNTIME_VERSION reads "15.4", "16.4", "17.3", "18.x" …
TESTED_RUNTIMES = {"15.4.x": "Databricks Runtime 15.4 LTS", "16.4.x": "Databricks Runtime 16.4 LTS",
                   "17.3.x": "Databricks Runtime 17.3 LTS", "18.x": "Databricks Runtime 18 LTS"}


class UntestedRuntimeWarning(UserWarning):
    """The Databricks runtime is outside the tested set: its pinned libraries were never resolved against ours."""


def is_databricks() -> bool:
    """True inside a Databricks runtime (notebook, job or Databricks Connect-less cluster)."""
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def runtime_key(version: str) -> str:
    """The ``spark_version`` prefix of a DATABRICKS_RUNTIME_VERSION: ``15.4`` → ``15.4.x``, ``18`` → ``18.x``."""
    version = version.strip()
    return version if version.endswith(".x") else (f"{version}.x" if re.fullmatch(r"\d+(\.\d+)?", version)
                                                   else version)


def check_runtime(version: Optional[str] = None) -> Optional[str]:
    """Warn (``UntestedRuntimeWarning``) when the runtime is outside ``TESTED_RUNTIMES``; returns its name if tested."""
    version = version if version is not None else os.environ.get("DATABRICKS_RUNTIME_VERSION", "")
    tested = TESTED_RUNTIMES.get(runtime_key(version))
    if tested is None:
        warnings.warn(f"Databricks runtime {version!r} is not in the tested set ({', '.join(TESTED_RUNTIMES)}): "
                      "its pinned Python libraries and Spark/Delta line were never tested with pipeline_opt",
                      UntestedRuntimeWarning, stacklevel=2)
    return tested


def is_connect(spark) -> bool:
    """True for a Spark Connect session (serverless, shared clusters, ``SPARK_REMOTE``): no ``sparkContext``."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def remote_url(conf: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The Spark Connect URL asked for: ``spark.remote`` in ``conf``, else ``SPARK_REMOTE``; None for none."""
    url = (conf or {}).get("spark.remote") or os.environ.get(REMOTE_ENV)
    return url.strip() if url and url.strip() else None


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


def delta_artifacts(pyspark_version: Optional[str] = None, delta_version: Optional[str] = None,
                    scala: Optional[str] = None) -> list[str]:
    """Maven coordinates of the Delta jars matching the installed (or given) pyspark and delta-spark.

    Delta 3.x builds one artifact per Scala version (``delta-spark_2.12`` for Spark 3.5's pip package), Delta 4.0
    one for Spark 4.0 (``delta-spark_2.13``), Delta 4.1 and later one per Spark minor (``delta-spark_4.2_2.13``).
    """
    from importlib.metadata import version

    spark = pyspark_version or version("pyspark")
    delta = delta_version or version("delta-spark")
    scala = scala or _scala_version(spark)
    major_minor = tuple(int(x) for x in delta.split(".")[:2])
    if major_minor < (4, 1):
        name = f"delta-spark_{scala}"
    else:
        name = f"delta-spark_{'.'.join(spark.split('.')[:2])}_{scala}"
    return [f"io.delta:{name}:{delta}", f"io.delta:delta-storage:{delta}"]


def _scala_version(spark_version: str) -> str:
    """Scala version of the installed pyspark's jars (``spark-core_2.12-3.5.0.jar``), else the line's default."""
    try:
        import pyspark

        for jar in (Path(pyspark.__file__).parent / "jars").glob("spark-core_*.jar"):
            return jar.name.split("_", 1)[1].split("-", 1)[0]
    except ImportError:
        pass
    return "2.12" if spark_version.startswith("3.") else "2.13"


def ivy_home() -> Path:
    """Spark's default Ivy folder: ``~/.ivy2`` for Spark 3, ``~/.ivy2.5.2`` for Spark 4 (Ivy 2.5.2's layout)."""
    from importlib.metadata import version

    return Path.home() / (".ivy2" if version("pyspark").startswith("3.") else ".ivy2.5.2")


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
    return [dest / f"{c.split(':')[1]}-{c.split(':')[2]}.jar" for c in delta_artifacts()]


def _local_jars() -> list[Path]:
    """Jars to load without Ivy: the Maven-copied ones of exactly the installed line (``artifact-version.jar``),
    else those an earlier Ivy resolution of the same line retrieved; none if any is missing. Jars of the other
    Spark line in the same folder are never mixed in."""
    jars = [jar_dir() / f"{c.split(':')[1]}-{c.split(':')[2]}.jar" for c in delta_artifacts()]
    if all(j.is_file() for j in jars):
        return jars
    try:
        resolved = [Path(line) for line in _resolution_file().read_text().split()]
    except (OSError, UnicodeDecodeError):
        return []
    return resolved if resolved and all(j.is_file() for j in resolved) else []


def _resolution_file() -> Path:
    """Where the jar list of one line's Ivy resolution is kept (keyed by the coordinates it resolved)."""
    key = "_".join(c.replace(":", "-") for c in delta_artifacts())
    return jar_dir() / f"ivy-resolved-{key}.txt"


def _remember_resolution(spark) -> None:
    """Keep the jars Ivy just retrieved, so later starts load them through ``spark.jars`` and skip Ivy's
    resolution (seconds, and a long report on the console, at every start)."""
    from urllib.parse import unquote, urlparse

    listed = spark.sparkContext.getConf().get("spark.jars", "")
    jars = [unquote(urlparse(j).path) if j.startswith("file:") else j for j in listed.split(",") if j]
    if not jars or not all(Path(j).is_file() for j in jars):
        return
    target = _resolution_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text("\n".join(jars) + "\n")
        partial.replace(target)  # atomic: a concurrent start reads the old list or the new one, never half
    except OSError:  # a read-only home only costs the next start another resolution
        pass


def get_spark(
    app_name: str = "pipeline_opt",
    master: Optional[str] = None,
    conf: Optional[Mapping[str, str]] = None,
) -> "SparkSession":
    """Return the active session: Databricks' own, a Spark Connect one, or a Delta-enabled one built for this machine.

    ``master`` defaults to ``PIPELINE_OPT_SPARK_MASTER`` or ``local[2]``; ``conf`` entries win over the defaults;
    ``conf["spark.remote"]`` or ``SPARK_REMOTE`` (``sc://host:port``) asks for Spark Connect.
    """
    sql = require("pyspark.sql", "spark")
    if is_databricks():
        check_runtime()
        return sql.SparkSession.builder.getOrCreate()
    url = remote_url(conf)
    if url is not None:
        return connect(url, app_name)
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
        # A caller that names packages (hadoop-aws for S3A) needs Ivy to resolve them: spark.jars would shadow them.
        extra_packages = "spark.jars.packages" in (conf or {})
        return _build(sql.SparkSession, app_name, master, conf, use_ivy=extra_packages or not _local_jars())
    except Exception as e:  # Ivy could not resolve: fall back to Maven-copied jars once
        if _local_jars() or "resolve" not in str(e).lower():
            raise
        fetch_jars_with_maven()
        return _build(sql.SparkSession, app_name, master, conf, use_ivy=False)


def connect(url: str, app_name: str = "pipeline_opt", timeout_s: float = 5.0) -> "SparkSession":
    """A Spark Connect session to ``url`` (``sc://host[:port][/;key=value…]``); one line naming the URL when the
    endpoint cannot be reached, instead of the client's minutes of retries."""
    host, port = connect_endpoint(url)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as e:
        raise PipelineOptError(f"Spark Connect endpoint {url} is unreachable ({host}:{port}: "
                               f"{e.strerror or e.__class__.__name__})") from None
    require("grpc", "connect")
    sql = require("pyspark.sql", "spark")
    return sql.SparkSession.builder.remote(url).appName(app_name).getOrCreate()


def connect_endpoint(url: str) -> tuple[str, int]:
    """Host and port of a Spark Connect URL (port 15002 unless given)."""
    m = re.fullmatch(r"sc://(\[[^\]]+\]|[^:/;]+)(?::(\d+))?(?:/.*)?", url.strip())
    if not m:
        raise PipelineOptError(f"Spark Connect URL {url!r} is not sc://HOST[:PORT][/;options]")
    return m.group(1).strip("[]"), int(m.group(2) or 15002)


@contextmanager
def scoped_session(spark, keys: Sequence[str]) -> Iterator["SparkSession"]:
    """A session whose conf changes to ``keys`` end with the block: a child session (``newSession``) on classic
    Spark, so concurrent runs never see each other's settings; on Spark Connect, which has no child sessions, the
    caller's session with those keys put back as they were."""
    if not is_connect(spark):
        try:
            yield spark.newSession()
        finally:  # a child's createDataFrame made it the active session; the caller's is again (public API only)
            spark.createDataFrame([], "x int")
        return
    before = {key: spark.conf.get(key, None) for key in keys}
    try:
        yield spark
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def _build(session_cls, app_name, master, conf, use_ivy: bool):
    log4j = Path(__file__).with_name("log4j2.properties")
    builder = session_cls.builder.appName(app_name).master(
        master or os.environ.get(MASTER_ENV, "local[2]")
    )
    java_opts = f"-Dlog4j2.configurationFile=file:{log4j}"
    if _debugging():  # --debug: Spark's own errors in its log too
        java_opts += " -Dpipeline_opt.jvm.log=error"
    if os.environ.get(METASTORE_ENV):  # Derby writes its log beside the metastore, not into the working directory
        java_opts += f" -Dderby.system.home={Path(os.environ[METASTORE_ENV]).expanduser().resolve()}"
    settings = {**LOCAL_CONFS, **DELTA_CONFS, "spark.driver.extraJavaOptions": java_opts,
                "spark.executor.extraJavaOptions": java_opts}
    if master_kind(master) == "local" and not os.environ.get("SPARK_LOCAL_DIRS"):
        settings["spark.local.dir"] = scratch_dir()  # a killed run's shuffle files go with the next start
    if use_ivy:
        settings["spark.jars.packages"] = ",".join(delta_artifacts())
    else:
        settings["spark.jars"] = ",".join(str(j) for j in _local_jars())
    settings.update(_metastore_confs())
    settings.update(conf or {})
    # Python workers on executors (UDFs, TorchDistributor tasks) start PYSPARK_PYTHON, which the builder conf alone
    # does not set for them: by default they run this interpreter, which has numpy, torch and pipeline_opt.
    os.environ.setdefault("PYSPARK_PYTHON", settings.get("spark.pyspark.python", sys.executable))
    for key, value in settings.items():
        builder = builder.config(key, value)
    if os.environ.get(METASTORE_ENV):
        builder = builder.enableHiveSupport()
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR" if _debugging() else "FATAL")  # see log4j2.properties
    if use_ivy and "spark.jars.packages" not in (conf or {}):  # remember Delta's own resolution only
        _remember_resolution(spark)
    return spark


def _debugging() -> bool:
    return os.environ.get("PIPELINE_OPT_DEBUG", "") not in ("", "0")


def _metastore_confs() -> dict[str, str]:
    """A persistent local catalog under ``PIPELINE_OPT_METASTORE``: an embedded Derby metastore and its warehouse,
    so ``pipeline-opt health db.t`` finds tables an earlier process created (one process at a time: Derby locks)."""
    root = os.environ.get(METASTORE_ENV)
    if not root:
        return {}
    base = Path(root).expanduser().resolve()
    base.mkdir(parents=True, exist_ok=True)
    derby = f"jdbc:derby:;databaseName={base / 'metastore_db'};create=true"
    return {"spark.sql.catalogImplementation": "hive", "spark.sql.warehouse.dir": str(base / "warehouse"),
            "spark.hadoop.javax.jdo.option.ConnectionURL": derby}
