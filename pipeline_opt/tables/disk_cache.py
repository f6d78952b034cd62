"""The Databricks disk cache (``spark.databricks.io.cache.*``), within a budget of local disk.

Invariants: the confs are set only on a Databricks-like session (``is_databricks()``, or the session already
carries ``spark.databricks.io.cache.enabled``, which only Databricks runtimes define); elsewhere nothing is set
and the result says that no disk cache exists and that the loader's file cache serves instead. The cache never
gets more than ``MAX_DISK_SHARE`` of the free local disk, whatever the budget asks. Confs Databricks only reads at
cluster start (sizes) are returned in ``cluster_confs`` for the job cluster's ``spark_conf`` when the running
session refuses them.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from pipeline_opt.errors import PipelineOptError
from pipeline_opt.units import format_size

ENABLED = "spark.databricks.io.cache.enabled"
MAX_DISK_USAGE = "spark.databricks.io.cache.maxDiskUsage"
MAX_METADATA = "spark.databricks.io.cache.maxMetaDataCache"
COMPRESSION = "spark.databricks.io.cache.compression.enabled"
MAX_DISK_SHARE = 0.5  # leave room for shuffle and spill, which share the same local SSDs
METADATA_SHARE = 0.02  # Databricks' defaults keep metadata about 1/50 of the data cache
DATABRICKS_LOCAL_DISK = "/local_disk0"


@dataclass
class DiskCacheResult:
    available: bool
    enabled: bool
    budget_bytes: int
    disk_free_bytes: Optional[int]
    confs: dict[str, str] = field(default_factory=dict)
    cluster_confs: dict[str, str] = field(default_factory=dict)
    message: str = ""

    def render(self) -> str:
        lines = [self.message]
        lines += [f"  {k} = {v}" for k, v in self.confs.items()]
        if self.cluster_confs:
            lines.append("  set at cluster start (job cluster spark_conf):")
            lines += [f"    {k} = {v}" for k, v in self.cluster_confs.items()]
        return "\n".join(lines)


def is_databricks_like(spark) -> bool:
    from pipeline_opt.spark import is_databricks

    return is_databricks() or spark.conf.get(ENABLED, None) is not None


def configure_disk_cache(spark, budget_bytes: int, local_dir: Optional[str] = None) -> DiskCacheResult:
    """Enable the disk cache with at most ``budget_bytes`` per node (capped by free local disk)."""
    if budget_bytes <= 0:
        raise PipelineOptError(f"disk cache budget {budget_bytes} must be positive")
    if not is_databricks_like(spark):
        return DiskCacheResult(False, False, 0, None, message=(
            "no disk cache here: spark.databricks.io.cache.* exists only on Databricks runtimes; the loader's "
            "file cache (DeltaDataset(file_cache=FileCache(...))) serves repeated reads instead"))
    free = _free_bytes(local_dir)
    budget = min(int(budget_bytes), int(free * MAX_DISK_SHARE))
    wanted = {ENABLED: "true", MAX_DISK_USAGE: _spark_size(budget),
              MAX_METADATA: _spark_size(max(int(budget * METADATA_SHARE), 2**20)), COMPRESSION: "false"}
    confs: dict[str, str] = {}
    cluster_confs: dict[str, str] = {}
    for key, value in wanted.items():
        (confs if _try_set(spark, key, value) else cluster_confs)[key] = value
    capped = " (capped at half the free local disk)" if budget < budget_bytes else ""
    return DiskCacheResult(True, confs.get(ENABLED) == "true", budget, free, confs, cluster_confs,
                           f"disk cache enabled, {format_size(budget)} per node{capped}")


def _free_bytes(local_dir: Optional[str]) -> int:
    where = local_dir or (DATABRICKS_LOCAL_DISK if Path(DATABRICKS_LOCAL_DISK).is_dir() else tempfile.gettempdir())
    try:
        return shutil.disk_usage(where).free
    except OSError:
        raise PipelineOptError(f"{where}: cannot read free space of the local disk for the disk cache") from None


def _spark_size(n: int) -> str:
    """Bytes as a Spark size string in whole MiB (Spark reads ``m`` as MiB)."""
    return f"{max(n // 2**20, 1)}m"


def _try_set(spark, key: str, value: str) -> bool:
    try:
        spark.conf.set(key, value)
        return True
    except Exception:  # Databricks refuses to change cluster-start confs at runtime
        return False
