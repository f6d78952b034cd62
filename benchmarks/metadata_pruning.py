"""Does Delta's scan prune data files on a ``_metadata.file_path`` filter? Verification selects the rows of the files
a commit touched with such a filter; this measures how many files Spark actually reads for it.

Writes benchmarks/results/metadata_pruning.json: files in the table, files named by the filter, and the scan's
``numFiles`` / output rows for the filtered and the unfiltered count.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from pipeline_opt.spark import get_spark

RESULTS = Path(__file__).parent / "results" / "metadata_pruning.json"


def _scan_metrics(df) -> dict:
    """numFiles and numOutputRows of the (only) file scan of ``df``'s executed plan, after running it."""
    df.collect()
    plan = df._jdf.queryExecution().executedPlan()
    if plan.getClass().getSimpleName() == "AdaptiveSparkPlanExec":
        plan = plan.executedPlan()
    stack = [plan]
    while stack:
        node = stack.pop()
        kind = node.getClass().getSimpleName()
        if "QueryStage" in kind:
            stack.append(node.plan())
            continue
        if kind == "FileSourceScanExec":
            metrics = node.metrics()
            return {k: int(metrics.apply(k).value()) for k in ("numFiles", "numOutputRows")}
        children = node.children()
        stack.extend(children.apply(i) for i in range(children.size()))
    return {}


def main() -> int:
    spark = get_spark("metadata-pruning")
    folder = tempfile.mkdtemp(prefix="pruning-")
    try:
        path = os.path.join(folder, "t")
        spark.range(0, 200_000, numPartitions=20).write.format("delta").save(path)
        name = "element_at(split(_metadata.file_path, '/'), -1)"
        files = sorted(r[0] for r in spark.sql(f"SELECT DISTINCT {name} FROM delta.`{path}`").collect())
        wanted = ", ".join(f"'{f}'" for f in files[:2])
        filtered = _scan_metrics(spark.sql(f"SELECT count(*) FROM delta.`{path}` VERSION AS OF 0 "
                                           f"WHERE {name} IN ({wanted})"))
        full = _scan_metrics(spark.sql(f"SELECT sum(id) FROM delta.`{path}` VERSION AS OF 0"))
        result = {"spark": spark.version, "table_files": len(files), "files_named": 2,
                  "filtered_scan": filtered, "full_scan": full,
                  "pruned": filtered.get("numFiles", len(files)) < len(files)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
