"""The one reader of Delta logs: table paths, snapshots at a version, deletion vectors.

``read_snapshot(path, version)`` gives the live data files (sizes, rows, deleted rows, partitions, stats,
deletion-vector descriptors) of local and remote tables alike; ``delta.deletion_vectors`` decodes a file's mask.
Health, the compaction planner, the loader, the cache's table sizes and the report all read tables through it.
"""
from pipeline_opt.delta.paths import BadTablePathError, check_local_table, check_table_path, is_remote
from pipeline_opt.delta.snapshot import DataFile, Snapshot, read_snapshot
from pipeline_opt.delta.table import open_table, operation_versions

__all__ = ["BadTablePathError", "DataFile", "Snapshot", "check_local_table", "check_table_path", "is_remote",
           "open_table", "operation_versions", "read_snapshot"]
