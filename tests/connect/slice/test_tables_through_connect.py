"""A representative slice of the tables suite through Spark Connect, one test per part: verification and undo,
compaction, VACUUM, partitioning --apply and catalog names, with the same test bodies the classic session runs;
plus what only Connect shows: no JVM handle is reachable, and compaction puts the session's confs back."""
from __future__ import annotations

import pytest

from pipeline_opt.spark import is_connect
from tests.tables.test_catalog_names import (  # noqa: F401 — collected here, with this folder's Connect ``spark``
    catalog,
    test_compact_by_name_verifies_and_keeps_every_row,
    test_missing_names_views_and_other_formats_are_one_clear_error,
)
from tests.tables.test_compact import (  # noqa: F401
    small_file_table,
    test_compaction_lands_bytes_in_window_verifies_and_is_idempotent,
)
from tests.tables.test_partitioning import (  # noqa: F401
    test_small_partitioned_table_is_advised_to_drop_partitioning_and_apply_is_one_verified_commit,
)
from tests.tables.test_vacuum import (  # noqa: F401
    test_vacuum_deletes_only_files_no_retained_version_needs,
)
from tests.tables.test_verify import (  # noqa: F401
    test_check_or_restore_restores_and_fails_loudly,
)


def test_the_session_is_spark_connect_without_jvm_handles(spark):
    assert is_connect(spark)
    with pytest.raises(Exception, match="not supported in Spark Connect"):
        spark.sparkContext  # noqa: B018 — library code must never need it


def test_compaction_puts_the_session_confs_back(spark, tmp_path):
    from pipeline_opt.tables.compact import compact_table
    from pipeline_opt.tables.options import CompactOptions
    from tests.tables.test_compact import WINDOW

    key = "spark.databricks.delta.optimize.maxFileSize"
    before = spark.conf.get(key, None)
    result = compact_table(spark, small_file_table(tmp_path / "t", files=8), CompactOptions(WINDOW))
    assert result.verified and result.files_removed == 8
    assert spark.conf.get(key, None) == before
    assert spark.conf.get("spark.databricks.delta.commitInfo.userMetadata", None) is None
