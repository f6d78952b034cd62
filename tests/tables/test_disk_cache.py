"""Disk cache on a Databricks-like session (conf present) and on plain Spark (conf absent), same real session."""
from __future__ import annotations

import shutil

import pytest

from pipeline_opt.errors import PipelineOptError
from pipeline_opt.tables.disk_cache import (
    ENABLED,
    MAX_DISK_SHARE,
    MAX_DISK_USAGE,
    MAX_METADATA,
    configure_disk_cache,
    is_databricks_like,
)

CONFS = (ENABLED, MAX_DISK_USAGE, MAX_METADATA, "spark.databricks.io.cache.compression.enabled")


@pytest.fixture
def clean_confs(spark, monkeypatch):
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    for key in CONFS:
        spark.conf.unset(key)
    yield spark
    for key in CONFS:
        spark.conf.unset(key)


def test_plain_spark_has_no_disk_cache_and_sets_nothing(clean_confs):
    spark = clean_confs
    result = configure_disk_cache(spark, 10 * 2**30)
    assert not is_databricks_like(spark)
    assert (result.available, result.enabled, result.confs) == (False, False, {})
    assert "exists only on Databricks" in result.message and "loader's file cache" in result.message
    assert all(spark.conf.get(k, None) is None for k in CONFS)


def test_databricks_like_session_gets_confs_within_budget(clean_confs, tmp_path):
    spark = clean_confs
    spark.conf.set(ENABLED, "false")  # what a Databricks runtime carries; plain Spark never defines it
    result = configure_disk_cache(spark, 64 * 2**20, local_dir=str(tmp_path))
    assert result.available and result.enabled and result.budget_bytes == 64 * 2**20
    assert spark.conf.get(ENABLED) == "true"
    assert spark.conf.get(MAX_DISK_USAGE) == "64m" and spark.conf.get(MAX_METADATA) == "1m"


def test_budget_is_capped_by_free_local_disk(clean_confs, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "15.4")  # the env stand-in for a Databricks runtime
    free = shutil.disk_usage(tmp_path).free
    result = configure_disk_cache(clean_confs, 10**18, local_dir=str(tmp_path))
    assert result.available and "capped" in result.message
    assert abs(result.budget_bytes - free * MAX_DISK_SHARE) <= 0.01 * free


def test_bad_budget_is_refused(clean_confs):
    with pytest.raises(PipelineOptError, match="-1"):
        configure_disk_cache(clean_confs, -1)
