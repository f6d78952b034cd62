"""The hadoop-aws jars that give Spark ``s3a://``, matched to the Hadoop inside the installed pyspark.

Invariants: hadoop-aws's version always equals the version of pyspark's bundled ``hadoop-client-api`` jar (a
mismatch fails at runtime with missing classes); the AWS SDK and the other runtime dependencies are the exact
versions hadoop-aws's POM names, resolved by Spark's Ivy from Maven Central on first use (the SDK bundle is about
690 MB) and cached under the Ivy folder. Once cached they go on the driver and executor class path directly, so a
new application neither resolves nor copies them; on a multi-node cluster without the jars at the same path,
``local_classpath=False`` has every executor fetch them from the driver instead.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

from pipeline_opt.storage.settings import StorageError

_DEP = re.compile(r'<dependency org="([^"]+)" name="([^"]+)" rev="([^"]+)"[^>]*conf="([^"]*)"')


def pyspark_jars() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def hadoop_version() -> str:
    """The Hadoop version bundled with pyspark (from ``hadoop-client-api-X.Y.Z.jar``)."""
    for jar in pyspark_jars().glob("hadoop-client-api-*.jar"):
        return jar.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    raise StorageError(f"no hadoop-client-api jar in {pyspark_jars()}: cannot pick a hadoop-aws version")


def s3a_packages() -> list[str]:
    return [f"org.apache.hadoop:hadoop-aws:{hadoop_version()}"]


def ivy_dir() -> Path:
    """Spark's Ivy folder (``PIPELINE_OPT_IVY_DIR``, else Spark 4's default ``~/.ivy2.5.2``)."""
    return Path(os.environ.get("PIPELINE_OPT_IVY_DIR", Path.home() / ".ivy2.5.2"))


def cached_s3a_jars(ivy: Optional[Path] = None) -> list[Path]:
    """hadoop-aws and its runtime dependencies from the Ivy cache; empty when any is missing."""
    ivy = ivy or ivy_dir()
    version = hadoop_version()
    descriptor = ivy / "cache" / "org.apache.hadoop" / "hadoop-aws" / f"ivy-{version}.xml"
    main = ivy / "jars" / f"org.apache.hadoop_hadoop-aws-{version}.jar"
    if not descriptor.is_file() or not main.is_file():
        return []
    jars = [main]
    for org, name, rev, conf in _DEP.findall(descriptor.read_text()):
        if conf.startswith(("compile->", "runtime->")) and org != "org.apache.hadoop":
            jars.append(ivy / "jars" / f"{org}_{name}-{rev}.jar")
    return jars if all(j.is_file() for j in jars) else []


def s3a_jar_confs(local_classpath: bool = True) -> dict[str, str]:
    """Spark confs that put hadoop-aws on the class path: cached jars directly, else Ivy packages.

    The packages value includes Delta's coordinates because it replaces the one ``get_spark`` sets.
    """
    jars = cached_s3a_jars() if local_classpath else []
    if jars:
        path = os.pathsep.join(str(j) for j in jars)
        return {"spark.driver.extraClassPath": path, "spark.executor.extraClassPath": path}
    from pipeline_opt.spark import delta_artifacts

    return {"spark.jars.packages": ",".join(delta_artifacts() + s3a_packages())}
