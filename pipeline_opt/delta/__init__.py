"""The one reader of Delta logs: table paths and references, snapshots at a version, deletion vectors.

``read_snapshot(path, version)`` gives the live data files (sizes, rows, deleted rows, partitions, stats,
deletion-vector descriptors) of local and remote tables alike; ``delta.deletion_vectors`` decodes a file's mask.
Health, the compaction planner, the loader, the cache's table sizes and the report all read tables through it.
``resolve_table(spark, text)`` turns a path or a catalog name into one ``TableRef`` (SQL by name, reads by location).
"""
from pipeline_opt.delta.paths import BadTablePathError, check_local_table, check_table_path, is_remote
from pipeline_opt.delta.ref import BadTableNameError, TableLike, TableRef, is_table_name, resolve_table, table_ref
from pipeline_opt.delta.snapshot import DataFile, Snapshot, read_snapshot
from pipeline_opt.delta.table import open_table, operation_versions

__all__ = ["BadTableNameError", "BadTablePathError", "DataFile", "Snapshot", "TableLike", "TableRef",
           "check_local_table", "check_table_path", "is_remote", "is_table_name", "open_table", "operation_versions",
           "read_snapshot", "resolve_table", "table_ref"]
