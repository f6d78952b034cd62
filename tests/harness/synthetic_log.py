"""A log-only Delta table: a commit of many add actions whose data files do not exist.

Invariants: the log is valid Delta (protocol 1/2, one metaData, one add per file with size and numRecords
stats) and readable by delta-rs and Spark's log replay; no data file is written, so anything that reads it and
succeeds never touched storage beyond ``_delta_log``. Used to test and measure log-only scans at 100,000+ files.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


def write_synthetic_log(path: str | Path, sizes: Sequence[int], partitions: Optional[Sequence[str]] = None,
                        rows_per_byte: float = 0.02, checkpoint: bool = True) -> Path:
    """Write version 0 of a table at ``path`` with one add action per entry of ``sizes``.

    ``partitions`` (same length) gives each file's value of the string partition column ``part``; None makes an
    unpartitioned table. With ``checkpoint`` delta-rs writes a checkpoint, as a real long-lived table has.
    """
    root = Path(path)
    log = root / "_delta_log"
    log.mkdir(parents=True, exist_ok=False)
    part_cols = ["part"] if partitions is not None else []
    fields = [{"name": "id", "type": "long", "nullable": True, "metadata": {}}]
    fields += [{"name": "part", "type": "string", "nullable": True, "metadata": {}}] if part_cols else []
    lines = [
        {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
        {"metaData": {"id": str(uuid.uuid4()), "format": {"provider": "parquet", "options": {}},
                      "schemaString": json.dumps({"type": "struct", "fields": fields}),
                      "partitionColumns": part_cols, "configuration": {}, "createdTime": 1_700_000_000_000}},
    ]
    for i, size in enumerate(np.asarray(sizes, dtype=np.int64)):
        values = {"part": str(partitions[i])} if part_cols else {}
        prefix = f"part={partitions[i]}/" if part_cols else ""
        rows = max(int(size * rows_per_byte), 1)
        lines.append({"add": {"path": f"{prefix}part-{i:06d}-{uuid.UUID(int=i)}.snappy.parquet",
                              "partitionValues": values, "size": int(size), "modificationTime": 1_700_000_000_000,
                              "dataChange": True, "stats": json.dumps({"numRecords": rows})}})
    lines.append({"commitInfo": {"timestamp": 1_700_000_000_000, "operation": "WRITE",
                                 "operationParameters": {"mode": "Append"}}})
    (log / f"{0:020d}.json").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    if checkpoint:
        from deltalake import DeltaTable

        DeltaTable(str(root)).create_checkpoint()
    return root
